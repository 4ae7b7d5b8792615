"""``tools/create_data.py`` subcommands of the synthetic world: ``synthetic-kitti``,
``synthetic-kitti-raw`` and ``synthetic-nuscenes``."""
import argparse
import math
import time
from typing import Callable, Optional


def int_in(low: int, high: Optional[int] = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in [low, high] (no upper bound with ``high=None``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}') from None
        if value < low or (high is not None and value > high):
            bounds = f'>= {low}' if high is None else f'in [{low}, {high}]'
            raise argparse.ArgumentTypeError(f'must be {bounds}, got {value}')
        return value

    return parse


def positive_float(text: str) -> float:
    """An argparse ``type``: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number, got {text!r}') from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f'must be a finite number > 0, got {text}')
    return value


# numpy's SeedSequence takes non-negative integers.
SEED = int_in(0)


def _common(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument('--out', default=default_out, help=f'output folder (default: {default_out})')
    parser.add_argument('--seed', type=SEED, default=0, help='the same seed writes byte-identical files (>= 0)')
    parser.add_argument('--workers', type=int_in(1), default=2, help='rendering processes')
    parser.add_argument('--force', action='store_true',
                        help='replace an earlier output of this generator in --out (a folder holding anything '
                        'else is refused)')


def _run(generate, args: argparse.Namespace, **sizes) -> None:
    start = time.perf_counter()
    counts = generate(args.out, seed=args.seed, workers=args.workers, force=args.force, **sizes)
    elapsed = time.perf_counter() - start
    frames = counts.get('frames', counts.get('samples'))
    print(f'wrote {args.out}: ' + ', '.join(f'{v} {k}' for k, v in counts.items()) +
          f' in {elapsed:.1f} s ({frames / max(elapsed, 1e-9):.2f} frames/s)')


def run_kitti(args: argparse.Namespace) -> None:
    from .kitti_object import generate_kitti_object
    _run(generate_kitti_object, args, num_train=args.num_train, num_val=args.num_val, mono=args.mono)


def run_kitti_raw(args: argparse.Namespace) -> None:
    from .kitti_raw import generate_kitti_raw
    _run(generate_kitti_raw, args, num_drives=args.num_drives, frames_per_drive=args.frames_per_drive,
         num_test_drives=args.num_test_drives, date=args.date)


def run_nuscenes(args: argparse.Namespace) -> None:
    from .nuscenes import generate_nuscenes
    _run(generate_nuscenes, args, num_scenes=args.num_scenes, num_val_scenes=args.num_val_scenes,
         samples_per_scene=args.samples_per_scene, version=args.version, image_scale=args.image_scale)


def add_synthetic_parsers(subparsers) -> None:
    """Add the three subcommands to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser('synthetic-kitti', help='render a KITTI object dataset (training/, ImageSets/)')
    _common(parser, 'data/synthkitti')
    parser.add_argument('--num-train', type=int_in(0), default=400, help='frames (0: an empty split, with a warning)')
    parser.add_argument('--num-val', type=int_in(0), default=100, help='frames (0: an empty split, with a warning)')
    parser.add_argument('--mono', action='store_true',
                        help='only image_2, calib and label_2 (no image_3, no velodyne: about half the time); '
                        'then `create_data.py kitti --no-lidar`')
    parser.set_defaults(func=run_kitti)

    parser = subparsers.add_parser('synthetic-kitti-raw',
                                   help='render KITTI raw drives with KITTI depth ground truth and split lists')
    _common(parser, 'data/synthkitti_raw')
    parser.add_argument('--num-drives', type=int_in(1), default=4, help='drives (> --num-test-drives)')
    parser.add_argument('--frames-per-drive', type=int_in(1), default=50)
    parser.add_argument('--num-test-drives', type=int_in(0), default=1, help='drives of the Eigen test list')
    parser.add_argument('--date', default='2011_09_26', help='recording date of the folder names')
    parser.set_defaults(func=run_kitti_raw)

    parser = subparsers.add_parser('synthetic-nuscenes', help='render a nuScenes v1.0 database')
    _common(parser, 'data/synthnuscenes')
    parser.add_argument('--num-scenes', type=int_in(1), default=10)
    parser.add_argument('--num-val-scenes', type=int_in(0), default=2, help='scenes of split synth_val')
    parser.add_argument('--samples-per-scene', type=int_in(1), default=20, help='keyframes 0.5 s apart')
    parser.add_argument('--version', default='v1.0-synth', help='name of the table folder')
    parser.add_argument('--image-scale', type=positive_float, default=1.0, help='shrink the 1600x900 cameras')
    parser.set_defaults(func=run_nuscenes)
