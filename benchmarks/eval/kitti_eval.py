"""Time the KITTI evaluator on a KITTI-val-sized set (3769 frames), optionally against the official C++.

    python benchmarks/eval/kitti_eval.py [--frames 3769] [--extra-fp 0] [--official-bin PATH]

The frames are built by replicating the frames of the KITTI oracle sets (../shared/oracles/kitti:
synthetic200, real3, edge; about 7 GT rows and 6 detections per frame), written to a temporary folder.
``--extra-fp N`` adds N low-score false positives per frame, like a detector that keeps many boxes.

``--official-bin`` is a build of the official devkit's ``evaluate_object.cpp`` (``g++ -O3 -DNDEBUG``).
It reads ``data/object/label_2`` and ``results/<name>/data`` under its working directory and stops at
a missing file, so the set is padded with empty files up to its hard-coded ``N_TESTIMAGES``
(``--official-n``, 7518 in the release); empty files change none of its numbers.

Both sides are timed end to end: reading the files and evaluating every class, metric and difficulty.
The official stats files are also compared with this evaluator's APs. The last line gives the seconds
of this project's evaluator.
"""
import argparse
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from perception.evaluation.kitti import DIFFICULTIES, ap_from_precision, kitti_eval, load_kitti_folders
from perception.fileio import read_label_file, write_label_file

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ORACLE_SETS = ('synthetic200', 'real3', 'edge')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--oracle-dir', default=osp.join(osp.dirname(REPO_ROOT), 'shared', 'oracles', 'kitti'))
    parser.add_argument('--frames', type=int, default=3769, help='frames to evaluate (KITTI val: 3769)')
    parser.add_argument('--extra-fp', type=int, default=0, help='low-score false positives per frame')
    parser.add_argument('--official-bin', help='a compiled official evaluate_object')
    parser.add_argument('--official-n', type=int, default=7518,
                        help='N_TESTIMAGES compiled into --official-bin')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def source_frames(oracle_dir):
    """(label path, result path) of every frame of the oracle sets."""
    frames = []
    for name in ORACLE_SETS:
        label_dir = osp.join(oracle_dir, name, 'label_2')
        for file in sorted(os.listdir(label_dir)):
            frames.append((osp.join(label_dir, file), osp.join(oracle_dir, name, 'results', file)))
    return frames


def add_false_positives(dets, n, rng):
    """``dets`` plus ``n`` random Car/Pedestrian/Cyclist boxes with scores below 0.05."""
    if n == 0:
        return dets
    x, z = rng.uniform(-20, 20, n), rng.uniform(5, 60, n)
    u = 721.5377 * x / z + 609.5593
    v = 721.5377 * 1.6 / z + 172.854
    size = 721.5377 * 1.6 / z
    extra = {
        'name': rng.choice(['Car', 'Pedestrian', 'Cyclist'], n),
        'alpha': rng.uniform(-np.pi, np.pi, n),
        'bbox': np.stack([u - size, v - size, u + size, v], axis=1),
        'dimensions': np.tile([1.5, 1.6, 3.9], (n, 1)),
        'location': np.stack([x, np.full(n, 1.6), z], axis=1),
        'rotation_y': rng.uniform(-np.pi, np.pi, n),
        'score': rng.uniform(0, 0.05, n),
    }
    return {k: np.concatenate([np.asarray(dets[k]).reshape(len(dets['name']), *np.shape(extra[k])[1:]),
                               extra[k]]) for k in extra}


def build_set(args, root):
    """Write ``data/object/label_2`` and ``results/bench/data`` under ``root``; returns both folders."""
    gt_dir = osp.join(root, 'data', 'object', 'label_2')
    result_dir = osp.join(root, 'results', 'bench', 'data')
    os.makedirs(gt_dir)
    os.makedirs(result_dir)
    rng = np.random.default_rng(args.seed)
    frames = source_frames(args.oracle_dir)
    for i in range(args.frames):
        label_path, result_path = frames[i % len(frames)]
        shutil.copyfile(label_path, osp.join(gt_dir, f'{i:06d}.txt'))
        dets = add_false_positives(read_label_file(result_path, with_score=True), args.extra_fp, rng)
        write_label_file(osp.join(result_dir, f'{i:06d}.txt'), dets, with_score=True)
    return gt_dir, result_dir


def official_difference(root, results):
    """Largest |AP difference| (points) between the official stats files and ``results``."""
    kinds = {'bbox': 'detection', 'aos': 'orientation', 'bev': 'detection_ground', '3d': 'detection_3d'}
    worst = 0.0
    for cls, per_metric in results['results'].items():
        for metric, entry in per_metric.items():
            path = osp.join(root, 'results', 'bench', f'stats_{cls.lower()}_{kinds[metric]}.txt')
            if entry is None or not osp.isfile(path):
                if (entry is None) != (not osp.isfile(path)):
                    sys.exit(f'{cls} {metric}: evaluated by one side only')
                continue
            with open(path) as f:
                curves = [np.array(line.split(), dtype=np.float64) for line in f if line.strip()]
            for curve, difficulty in zip(curves, DIFFICULTIES):
                for recall, ap in ap_from_precision(curve).items():
                    worst = max(worst, abs(ap - entry[recall][difficulty]))
    return worst


def time_official(args, root):
    for i in range(args.frames, args.official_n):
        for folder in (osp.join(root, 'data', 'object', 'label_2'), osp.join(root, 'results', 'bench', 'data')):
            open(osp.join(folder, f'{i:06d}.txt'), 'w').close()
    start = time.perf_counter()
    proc = subprocess.run([osp.abspath(args.official_bin), 'bench'], cwd=root, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if not osp.isfile(osp.join(root, 'results', 'bench', 'stats_car_detection.txt')):
        sys.exit(f'the official evaluator wrote no stats (exit code {proc.returncode}):\n'
                 f'{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}')
    return seconds


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        gt_dir, result_dir = build_set(args, root)
        start = time.perf_counter()
        _, gt_annos, dt_annos = load_kitti_folders(gt_dir, result_dir)
        loaded = time.perf_counter()
        results = kitti_eval(gt_annos, dt_annos)
        done = time.perf_counter()
        n_gt = sum(len(g['name']) for g in gt_annos)
        n_det = sum(len(d['name']) for d in dt_annos)
        rows = [('perception (read + evaluate)', done - start),
                ('  of which reading', loaded - start),
                ('  of which evaluating', done - loaded)]
        if args.official_bin:
            rows.append(('official C++ devkit', time_official(args, root)))
            worst = official_difference(root, results)
    print(f'{args.frames} frames, {n_gt / args.frames:.1f} GT rows and {n_det / args.frames:.1f} detections '
          f'per frame, 3 classes x 4 metrics x 3 difficulties, R40 + R11')
    for name, seconds in rows:
        print(f'{name:<32}{seconds:>9.2f} s')
    if args.official_bin:
        print(f'speed-up over the official C++: {rows[-1][1] / rows[0][1]:.1f}x; largest AP difference '
              f'{worst:.1e} points (the official prints precision with 6 decimals)')
    print(f'time: {rows[0][1]:.2f} s')


if __name__ == '__main__':
    main()
