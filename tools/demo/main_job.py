"""The main job: MonoDETR on the synthetic KITTI world, end to end on the CPU (about 15 minutes on 2 cores).

    python tools/demo/main_job.py [--root data/synthkitti] [--work-dir work_dirs/main_job]

1. renders the synthetic KITTI world into ``--root`` unless it is there (800 train / 200 val frames),
2. writes its info files (``tools/create_data.py kitti``) unless they are there,
3. trains ``configs/monodetr/monodetr_r18_1e_synthkitti-mono3d.py`` (one epoch over 400 frames),
4. tests the last checkpoint with ``tools/test.py`` and the KITTI evaluator (prints the table, writes
   the KITTI result files),
5. draws the predictions of four val frames (3D boxes on the image, bird's-eye view) and the loss curve.

The schedule here shows the whole path working; what the model reaches with a longer schedule is in
configs/monodetr/README.md (``configs/monodetr/monodetr_r18_8e_synthkitti-mono3d.py``).
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/monodetr/monodetr_r18_1e_synthkitti-mono3d.py'


def step(index: int, text: str) -> None:
    print(f'\n[main job {index}/5] {text}', flush=True)


def run(args) -> None:
    print('$ ' + ' '.join(args), flush=True)
    subprocess.run([sys.executable] + args, cwd=REPO, check=True)


def draw_loss_curve(work_dir: str, out: str) -> bool:
    """Plot the training loss logged by mmengine (``<timestamp>/vis_data/scalars.json``)."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not logs:
        return False
    steps, losses = [], []
    with open(logs[-1]) as f:
        for line in f:
            record = json.loads(line)
            if 'loss' in record and 'step' in record and 'lr' in record:
                steps.append(record['step'])
                losses.append(record['loss'])
    if not steps:
        return False
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot(steps, losses)
    ax.set_xlabel('iteration')
    ax.set_ylabel('total loss')
    ax.set_title('MonoDETR on the synthetic KITTI world')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--root', default='data/synthkitti', help='synthetic KITTI world (made when absent)')
    parser.add_argument('--work-dir', default='work_dirs/main_job')
    parser.add_argument('--train-frames', type=int, default=400, help='frames of the training epoch')
    parser.add_argument('--num-train', type=int, default=800, help='frames to render for training')
    parser.add_argument('--num-val', type=int, default=200, help='frames to render for validation')
    args = parser.parse_args()
    start = time.perf_counter()
    root = args.root.rstrip('/') + '/'
    work_dir = args.work_dir

    step(1, f'synthetic KITTI world in {root}')
    if osp.isfile(osp.join(root, 'ImageSets', 'val.txt')):
        print('found, not rendered again')
    else:
        run(['tools/create_data.py', 'synthetic-kitti', '--out', root, '--num-train', str(args.num_train),
             '--num-val', str(args.num_val), '--seed', '0'])

    step(2, 'info files')
    if all(osp.isfile(osp.join(root, f'kitti_infos_{s}.pkl')) for s in ('train', 'val')):
        print('found, not written again')
    else:
        run(['tools/create_data.py', 'kitti', '--root', root])

    data_options = [
        f'data_root={root}', f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}', f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_dir={root}training/label_2', f'test_evaluator.ann_dir={root}training/label_2'
    ]
    step(3, f'training {CONFIG} ({args.train_frames} frames, one epoch)')
    run(['tools/train.py', CONFIG, '--work-dir', work_dir, '--cfg-options',
         f'train_dataloader.dataset.indices={args.train_frames}'] + data_options)

    step(4, 'testing with the KITTI evaluator')
    checkpoint = osp.join(work_dir, 'epoch_1.pth')
    results = osp.join(work_dir, 'kitti_results')
    run(['tools/test.py', CONFIG, checkpoint, '--work-dir', work_dir, '--cfg-options',
         f'test_evaluator.outfile_prefix={results}'] + data_options)

    step(5, 'pictures')
    sys.path.insert(0, REPO)
    from tools.analysis.draw_kitti_results import draw_results
    print('predictions (white: ground truth):', draw_results(root, results, osp.join(work_dir, 'predictions.png'),
                                                          num=4))
    if draw_loss_curve(work_dir, osp.join(work_dir, 'loss.png')):
        print('loss curve:', osp.join(work_dir, 'loss.png'))
    print(f'\nmain job done in {(time.perf_counter() - start) / 60:.1f} min', flush=True)


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
    main()
