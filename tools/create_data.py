"""Prepare datasets: info files for real datasets, generation of the synthetic ones.

    python tools/create_data.py kitti --root data/kitti [--out-dir DIR] [--with-plane] [--no-lidar]
    python tools/create_data.py synthetic-kitti --out data/synthkitti --num-train 400 --num-val 100 --seed 0
    python tools/create_data.py synthetic-kitti-raw | synthetic-nuscenes --out DIR --seed N [--force]
    python tools/create_data.py synthetic-coco --src data/synthkitti --out data/synthcoco [--generate] [--force]

Each dataset is one subcommand: an ``add_<name>_parser(subparsers)`` function declares its arguments and sets
``func`` to the function that runs it with the parsed arguments.
"""
import argparse

from perception.datasets.converters.kitti_converter import create_kitti_infos
from perception.datasets.converters.synthcoco_converter import create_synthcoco
from perception.datasets.synthetic.cli import add_synthetic_parsers


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
    parser.add_argument('--num-train', type=int, default=400, help='frames to render for train, if rendering')
    parser.add_argument('--num-val', type=int, default=100, help='frames to render for val, if rendering')
    parser.add_argument('--seed', type=int, default=0, help='seed of the rendered world, if rendering')
    parser.add_argument('--workers', type=int, default=2, help='rendering processes, if rendering')
    parser.add_argument('--force', action='store_true', help='empty a non-empty --out first')
    parser.set_defaults(func=run_synthetic_coco)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest='dataset', required=True, metavar='DATASET')
    for add_parser in (add_kitti_parser, add_synthetic_parsers, add_synthetic_coco_parser):
        add_parser(subparsers)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.func(args)


if __name__ == '__main__':
    main()
