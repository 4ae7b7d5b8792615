"""Prepare datasets: info files for real datasets, generation of the synthetic ones.

    python tools/create_data.py kitti --root data/kitti [--out-dir DIR] [--with-plane] [--no-lidar]
    python tools/create_data.py synthetic-kitti --out data/synthkitti --num-train 400 --num-val 100 --seed 0
    python tools/create_data.py synthetic-kitti-raw | synthetic-nuscenes --out DIR --seed N [--force]
    python tools/create_data.py synthetic-coco --src data/synthkitti --out data/synthcoco [--generate] [--force]
    python tools/create_data.py nuscenes --root data/nuscenes --version v1.0-trainval [--split-file F]

Each dataset is one subcommand: an ``add_<name>_parser(subparsers)`` function declares its arguments and sets
``func`` to the function that runs it with the parsed arguments.
"""
import argparse

from perception.datasets.converters.kitti_converter import create_kitti_infos
from perception.datasets.converters.nuscenes_converter import create_nuscenes_infos
from perception.datasets.converters.synthcoco_converter import create_synthcoco
from perception.datasets.synthetic.cli import SEED, add_synthetic_parsers, int_in


def run_kitti(args: argparse.Namespace) -> None:
    create_kitti_infos(args.root, out_dir=args.out_dir, prefix=args.prefix, with_plane=args.with_plane,
                       with_lidar=not args.no_lidar)


def add_kitti_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'kitti', help='KITTI object: kitti_infos_{train,val,trainval,test}.pkl in the mmdet3d 1.x format')
    parser.add_argument('--root', required=True, help='dataset root holding ImageSets/, training/ and testing/')
    parser.add_argument('--out-dir', help='where to write the info files (default: --root)')
    parser.add_argument('--prefix', default='kitti', help='file name prefix of the info files')
    parser.add_argument('--with-plane', action='store_true', help='store the ground planes of training/planes')
    parser.add_argument('--no-lidar', action='store_true',
                        help='do not read velodyne/ (for image-only downloads): num_lidar_pts is then -1')
    parser.set_defaults(func=run_kitti)


def run_nuscenes(args: argparse.Namespace) -> None:
    splits = None
    if args.splits:
        pairs = [item.split('=', 1) for item in args.splits]
        if any(len(pair) != 2 or not all(pair) for pair in pairs):
            raise SystemExit(f'--splits expects OUT=SPLIT pairs (train=synth_train), got {args.splits}')
        splits = dict(pairs)
    create_nuscenes_infos(args.root, version=args.version, out_dir=args.out_dir, prefix=args.prefix,
                          split_file=args.split_file, splits=splits, max_sweeps=args.max_sweeps)


def add_nuscenes_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'nuscenes', help='nuScenes (any version): {prefix}_infos_{train,val}.pkl in the mmdet3d 1.x format, with the '
        'temporal keys of streaming camera detectors')
    parser.add_argument('--root', required=True, help='the devkit dataroot, holding <version>/ and samples/')
    parser.add_argument('--version', default='v1.0-trainval',
                        help='table folder: v1.0-trainval, v1.0-mini, v1.0-test or a custom one (v1.0-synth)')
    parser.add_argument('--split-file', help='JSON {split: [scene names]} (default: the official splits, or '
                        '<root>/<version>/splits.json for a custom version)')
    parser.add_argument('--splits', nargs='+', metavar='OUT=SPLIT',
                        help='output files and the splits they hold (default: train/val/test, or the unique '
                        '*_train/*_val/*_test splits of the split file)')
    parser.add_argument('--out-dir', help='where to write the info files (default: --root)')
    parser.add_argument('--prefix', default='nuscenes', help='file name prefix of the info files')
    parser.add_argument('--max-sweeps', type=int, default=10, help='LiDAR sweeps kept per sample')
    parser.set_defaults(func=run_nuscenes)


def run_synthetic_coco(args: argparse.Namespace) -> None:
    create_synthcoco(args.src, args.out, generate=args.generate, num_train=args.num_train, num_val=args.num_val,
                     seed=args.seed, workers=args.workers, force=args.force)


def add_synthetic_coco_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'synthetic-coco', help='left images and 2D boxes of KITTI-layout frames (the synthetic world) as COCO '
        'annotations/instances_{train,val}.json + train/, val/ (the *_synthcoco 2D detector configs)')
    parser.add_argument('--src', default='data/synthkitti',
                        help='KITTI object layout to read (default: data/synthkitti); rendered first when missing')
    parser.add_argument('--out', default='data/synthcoco', help='output folder (default: data/synthcoco)')
    parser.add_argument('--generate', action='store_true',
                        help='render the synthetic KITTI world into --src when it is an empty folder')
    parser.add_argument('--num-train', type=int_in(0), default=400, help='frames to render for train, if rendering')
    parser.add_argument('--num-val', type=int_in(0), default=100, help='frames to render for val, if rendering')
    parser.add_argument('--seed', type=SEED, default=0, help='seed of the rendered world, if rendering')
    parser.add_argument('--workers', type=int_in(1), default=2, help='rendering processes, if rendering')
    parser.add_argument('--force', action='store_true',
                        help='replace an earlier output in --out (annotations/, train/, val/; a folder holding '
                        'anything else is refused)')
    parser.set_defaults(func=run_synthetic_coco)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest='dataset', required=True, metavar='DATASET')
    for add_parser in (add_kitti_parser, add_synthetic_parsers, add_synthetic_coco_parser,
                       add_nuscenes_parser):
        add_parser(subparsers)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.func(args)


if __name__ == '__main__':
    main()
