"""Plot validation metrics against training iterations from mmengine's logs, one line per run and metric.

    python tools/analysis/plot_learning_curve.py work_dirs/monodetr_4k work_dirs/monodgp_4k --out curve.png \
        [--metrics kitti/Car_2D_R40_moderate kitti_loose/Car_2D_R40_moderate ...] [--labels MonoDETR MonoDGP]

Each run is a ``--work-dir`` of ``tools/train.py``: the validation records of every ``<timestamp>/vis_data/
scalars.json`` below it are read (a resumed run has several), later runs overriding earlier ones at the same
iteration. The table of the plotted values is printed too.
"""
import argparse
import glob
import json
import os.path as osp
from typing import Dict, List, Sequence

DEFAULT_METRICS = ('kitti/Car_2D_R40_moderate', 'kitti_loose/Car_2D_R40_moderate', 'kitti_loose/Car_BEV_R40_moderate',
                   'kitti/Car_3D_R40_moderate')


def read_scalars(work_dir: str, metrics: Sequence[str]) -> Dict[int, Dict[str, float]]:
    """``{iteration: {metric: value}}`` of the records of a work dir that hold any of ``metrics`` (validation
    metrics, or training scalars such as ``loss``)."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not logs:
        raise FileNotFoundError(f'{work_dir}: no <timestamp>/vis_data/scalars.json (a tools/train.py work dir?)')
    curve = {}
    for log in logs:
        with open(log) as f:
            for line in f:
                record = json.loads(line)
                if 'step' in record and any(m in record for m in metrics):
                    curve[int(record['step'])] = {m: record[m] for m in metrics if m in record}
    return dict(sorted(curve.items()))


def plot(curves: Dict[str, Dict[int, Dict[str, float]]], metrics: List[str], out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(10, 4), dpi=110)
    styles = ['-', '--', ':', '-.']
    for r, (label, curve) in enumerate(curves.items()):
        for m, metric in enumerate(metrics):
            points = [(it, values[metric]) for it, values in curve.items() if metric in values]
            if points:
                ax.plot(*zip(*points), styles[r % len(styles)], marker='o', color=f'C{m}',
                        label=f'{label}: {metric}')
    ax.set_xlabel('training iteration')
    ax.set_ylabel('AP (%)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1.0))  # beside the curves, not on them
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dirs', nargs='+')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--metrics', nargs='+', default=list(DEFAULT_METRICS))
    parser.add_argument('--labels', nargs='+', help='one per work dir (default: the folder names)')
    args = parser.parse_args()
    labels = args.labels or [osp.basename(osp.normpath(d)) for d in args.work_dirs]
    if len(labels) != len(args.work_dirs):
        parser.error(f'{len(labels)} labels for {len(args.work_dirs)} work dirs')
    curves = {label: read_scalars(d, args.metrics) for label, d in zip(labels, args.work_dirs)}
    for label, curve in curves.items():
        print(f'{label}: iteration ' + ' '.join(f'{m:>34}' for m in args.metrics))
        for it, values in curve.items():
            print(f'{"":{len(label)}}  {it:>9} ' + ' '.join(f'{values.get(m, float("nan")):>34.2f}'
                                                            for m in args.metrics))
    plot(curves, args.metrics, args.out)
    print(args.out)


if __name__ == '__main__':
    main()
