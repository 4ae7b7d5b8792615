"""Evaluate a nuScenes detection result file with the official nuscenes-devkit, on any version and split.

    python tools/analysis/nuscenes_eval.py --dataroot data/nuscenes --version v1.0-trainval --eval-set val \
        --result results_nusc.json --out metrics.json
    python tools/analysis/nuscenes_eval.py --dataroot data/synthnuscenes --version v1.0-synth --eval-set synth_val \
        --result work_dirs/x/results/results_nusc.json --out metrics.json

``--eval-set`` is a predefined split or a custom one of ``<dataroot>/<version>/splits.json`` (or of
``--split-file``). The result file is checked first (every sample of the split present, box fields well formed,
no NaN); the devkit's table is printed, and ``--out`` gets the devkit's ``metrics_summary.json`` (``mean_ap``,
``nd_score``, ``tp_errors``, ``label_aps``, ...).
"""
import argparse
import json
import os
import os.path as osp
import tempfile

from nuscenes import NuScenes

from perception.evaluation.metrics.nuscenes_metric import nuscenes_evaluate


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dataroot', required=True, help='nuScenes data root (holds <version>/)')
    parser.add_argument('--version', required=True, help='table folder, e.g. v1.0-trainval or v1.0-synth')
    parser.add_argument('--eval-set', required=True, help='split to evaluate on, e.g. val, mini_val, synth_val')
    parser.add_argument('--result', required=True, help='detection results in the official JSON format')
    parser.add_argument('--out', help='JSON file for the metrics summary')
    parser.add_argument('--split-file', help='custom splits {name: [scene names]} '
                        '(default: <dataroot>/<version>/splits.json)')
    parser.add_argument('--config', default='detection_cvpr_2019', help='devkit evaluation configuration')
    parser.add_argument('--output-dir', help='where the devkit writes its files (default: a temporary folder)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    nusc = NuScenes(version=args.version, dataroot=args.dataroot, verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        summary = nuscenes_evaluate(args.result, nusc, args.eval_set, args.output_dir or tmp, args.config,
                                    args.split_file)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(summary, f, indent=2)
        print(f'metrics written to {args.out}')
    return summary


if __name__ == '__main__':
    main()
