"""``tools/create_data.py`` subcommands of the synthetic world: ``synthetic-kitti``,
``synthetic-kitti-raw`` and ``synthetic-nuscenes``."""
import argparse
import time


def _common(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument('--out', default=default_out, help=f'output folder (default: {default_out})')
    parser.add_argument('--seed', type=int, default=0, help='the same seed writes byte-identical files')
    parser.add_argument('--workers', type=int, default=2, help='rendering processes')
    parser.add_argument('--force', action='store_true', help='empty a non-empty --out first')


def _run(generate, args: argparse.Namespace, **sizes) -> None:
    start = time.perf_counter()
    counts = generate(args.out, seed=args.seed, workers=args.workers, force=args.force, **sizes)
    elapsed = time.perf_counter() - start
    frames = counts.get('frames', counts.get('samples'))
    print(f'wrote {args.out}: ' + ', '.join(f'{v} {k}' for k, v in counts.items()) +
          f' in {elapsed:.1f} s ({frames / elapsed:.2f} frames/s)')


def run_kitti(args: argparse.Namespace) -> None:
    from .kitti_object import generate_kitti_object
    _run(generate_kitti_object, args, num_train=args.num_train, num_val=args.num_val)


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
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.set_defaults(func=run_kitti)

    parser = subparsers.add_parser('synthetic-kitti-raw',
                                   help='render KITTI raw drives with KITTI depth ground truth and split lists')
    _common(parser, 'data/synthkitti_raw')
    parser.add_argument('--num-drives', type=int, default=4)
    parser.add_argument('--frames-per-drive', type=int, default=50)
    parser.add_argument('--num-test-drives', type=int, default=1, help='drives of the Eigen test list')
    parser.add_argument('--date', default='2011_09_26', help='recording date of the folder names')
    parser.set_defaults(func=run_kitti_raw)

    parser = subparsers.add_parser('synthetic-nuscenes', help='render a nuScenes v1.0 database')
    _common(parser, 'data/synthnuscenes')
    parser.add_argument('--num-scenes', type=int, default=10)
    parser.add_argument('--num-val-scenes', type=int, default=2, help='scenes of split synth_val')
    parser.add_argument('--samples-per-scene', type=int, default=20, help='keyframes 0.5 s apart')
    parser.add_argument('--version', default='v1.0-synth', help='name of the table folder')
    parser.add_argument('--image-scale', type=float, default=1.0, help='shrink the 1600x900 cameras')
    parser.set_defaults(func=run_nuscenes)
