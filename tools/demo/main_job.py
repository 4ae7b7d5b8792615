"""The main job: MonoDETR on the synthetic KITTI world, end to end on the CPU (about 12 minutes on 2 cores).

    python tools/demo/main_job.py [--root data/synthkitti] [--work-dir work_dirs/main_job]

1. renders the synthetic KITTI world into ``--root`` unless it is there (800 train / 200 val frames, the left
   camera: ``image_2``, ``calib``, ``label_2``),
2. writes its info files (``tools/create_data.py kitti``) unless they are there,
3. trains ``configs/monodetr/monodetr_r18_main-job_synthkitti-mono3d.py`` from scratch (550 iterations of batch 4 in
   bfloat16 autocast; float32 on a CPU without bfloat16 matrix units; the recipe: see the config),
4. tests the last checkpoint with ``tools/test.py`` and the KITTI evaluator on the 200 val frames (prints the tables
   at the official overlaps and at IoU 0.5 for cars, writes the KITTI result files),
5. draws the predictions of four val frames (3D boxes on the image, bird's-eye view) and the loss curve.

What the model reaches with a longer schedule is in configs/monodetr/README.md.
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
CONFIG = 'configs/monodetr/monodetr_r18_main-job_synthkitti-mono3d.py'
TARGET = 30.0  # Car AP2D|R40 moderate at IoU 0.5


def step(index: int, text: str) -> None:
    print(f'\n[main job {index}/5] {text}', flush=True)


def run(args) -> None:
    print('$ ' + ' '.join(args), flush=True)
    subprocess.run([sys.executable] + args, cwd=REPO, check=True)


def draw_loss_curve(work_dir: str, out: str) -> bool:
    """Plot the training loss logged by mmengine (``<timestamp>/vis_data/scalars.json``)."""
    from tools.analysis.plot_learning_curve import read_scalars
    try:
        losses = read_scalars(work_dir, ['loss'])
    except FileNotFoundError:
        return False
    if not losses:
        return False
    steps = list(losses)
    losses = [values['loss'] for values in losses.values()]
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


def cpu_has_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 matrices natively (AMX tiles or AVX512-BF16)."""
    import torch
    return torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()


def precision_options() -> list:
    """``--cfg-options`` for the training: the config's bfloat16 autocast, or float32 on a CPU without bfloat16
    units (the 1.2x of bfloat16 was measured with AMX; without them the CPU only emulates it)."""
    if cpu_has_bf16():
        return []
    print('this CPU has neither AMX nor AVX512-BF16: training in float32 (the config trains in bfloat16)')
    return ['optim_wrapper.type=OptimWrapper']


def read_car_ap2d(work_dir: str):
    """Car AP2D|R40 moderate at IoU 0.5 of the test run (``kitti_loose/...`` in tools/test.py's metrics JSON)."""
    found = sorted(glob.glob(osp.join(work_dir, '*', '*.json')), key=osp.getmtime)
    for path in reversed(found):
        with open(path) as f:
            try:
                metrics = json.load(f)
            except json.JSONDecodeError:
                continue
        if isinstance(metrics, dict) and 'kitti_loose/Car_2D_R40_moderate' in metrics:
            return metrics['kitti_loose/Car_2D_R40_moderate']
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--root', default='data/synthkitti', help='synthetic KITTI world (made when absent)')
    parser.add_argument('--work-dir', default='work_dirs/main_job')
    parser.add_argument('--num-train', type=int, default=800, help='frames to render for training')
    parser.add_argument('--num-val', type=int, default=200, help='frames to render for validation')
    args = parser.parse_args()
    start = time.perf_counter()
    timings = {}
    root = args.root.rstrip('/') + '/'
    work_dir = args.work_dir

    step(1, f'synthetic KITTI world in {root}')
    if osp.isfile(osp.join(root, 'ImageSets', 'val.txt')):
        print('found, not rendered again')
    else:
        # the left camera only: MonoDETR reads no right view and no LiDAR sweep (half the rendering time)
        run(['tools/create_data.py', 'synthetic-kitti', '--out', root, '--num-train', str(args.num_train),
             '--num-val', str(args.num_val), '--seed', '0', '--mono'])

    timings['rendering'] = time.perf_counter()
    step(2, 'info files')
    if all(osp.isfile(osp.join(root, f'kitti_infos_{s}.pkl')) for s in ('train', 'val')):
        print('found, not written again')
    else:
        run(['tools/create_data.py', 'kitti', '--root', root, '--no-lidar'])
    timings['info files'] = time.perf_counter()

    data_options = [
        f'data_root={root}', f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}', f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.0.ann_dir={root}training/label_2', f'val_evaluator.1.ann_dir={root}training/label_2',
        f'test_evaluator.0.ann_dir={root}training/label_2', f'test_evaluator.1.ann_dir={root}training/label_2'
    ]
    step(3, f'training {CONFIG} from scratch')
    precision = precision_options()
    # no validation inside the run (mmengine's loop validates at the last iteration whatever val_interval, unless
    # val_begin lies beyond it): step 4 tests the last checkpoint
    run(['tools/train.py', CONFIG, '--work-dir', work_dir, '--cfg-options', 'train_cfg.val_begin=1000000']
        + precision + data_options)
    timings['training'] = time.perf_counter()

    step(4, 'testing with the KITTI evaluator (official overlaps, then IoU 0.5 for cars)')
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    results = osp.join(work_dir, 'kitti_results')
    run(['tools/test.py', CONFIG, checkpoint, '--work-dir', work_dir, '--cfg-options',
         f'test_evaluator.0.outfile_prefix={results}'] + data_options)
    timings['test'] = time.perf_counter()

    step(5, 'pictures')
    sys.path.insert(0, REPO)
    from tools.analysis.draw_kitti_results import draw_results
    pictures = draw_results(root, results, osp.join(work_dir, 'predictions.png'), num=4)
    print('predictions (class colours; white: ground truth):', pictures)
    if draw_loss_curve(work_dir, osp.join(work_dir, 'loss.png')):
        print('loss curve:', osp.join(work_dir, 'loss.png'))
    timings['pictures'] = time.perf_counter()
    ap = read_car_ap2d(work_dir)
    previous, parts = start, []
    for name, t in timings.items():
        parts.append(f'{name} {(t - previous) / 60:.1f}')
        previous = t
    print(f'\nmain job done in {(previous - start) / 60:.1f} min ({", ".join(parts)} min)')
    if ap is not None:
        verdict = 'reached' if ap >= TARGET else 'NOT reached'
        print(f'Car AP2D|R40 moderate at IoU 0.5 on the val frames: {ap:.2f} (target {TARGET:.0f}: {verdict})',
              flush=True)


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
    main()
