"""Depth of every frame of a video, a folder of frames or a KITTI raw drive, streamed through a depth model.

    python tools/infer_video_depth.py SRC CONFIG [CKPT] --out-dir DIR [--save npy,png16,video] [--device cpu]
        [--batch-size 1] [--align none|first|running] [--fps F] [--cfg-options k=v ...]

Writes ``DIR/depth_npy/<frame>.npy`` (float32), ``DIR/depth_png16/<frame>.png`` (KITTI depth PNG, metres x 256)
and ``DIR/<source>_depth.mp4`` (the input beside its colourised depth, one colour scale for the whole video),
see :class:`perception.apis.VideoDepthInferencer`.
"""
import argparse
import time

from mmengine.config import DictAction

from perception.apis import VideoDepthInferencer
from perception.apis.video_depth import ALIGN_MODES, SAVE_KINDS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='video file, folder of frames or KITTI raw drive folder')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (default: the config\'s initialisation)')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument('--save', default='npy,video', help=f'comma-separated subset of {",".join(SAVE_KINDS)}')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.add_argument('--batch-size', type=int, default=1, help='frames per forward pass (per-frame models)')
    parser.add_argument('--align', choices=ALIGN_MODES, default='none', help='temporal alignment of relative depth')
    parser.add_argument('--fps', type=float, help='frame rate of the mp4 (default: the source\'s, else 10)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='overrides of the config')
    args = parser.parse_args(argv)
    args.save = tuple(s for s in args.save.split(',') if s)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    inferencer = VideoDepthInferencer(args.config, args.checkpoint, device=args.device, cfg_options=args.cfg_options)
    start = time.perf_counter()
    count, metric = 0, None
    for result in inferencer(args.src, out_dir=args.out_dir, save=args.save, batch_size=args.batch_size,
                             align=args.align, fps=args.fps):
        count, metric = count + 1, result.metric
    elapsed = time.perf_counter() - start
    kind = 'metres' if metric else 'relative depth'
    print(f'{args.src}: {count} frames ({kind}) in {elapsed:.1f} s ({count / elapsed:.2f} frames/s), '
          f'written to {args.out_dir}: {", ".join(args.save)}')


if __name__ == '__main__':
    main()
