"""Peak memory of VideoDepthInferencer over videos of 50, 200 and 500 frames, against a plain loop that reads
every frame into a list first (as ChronoDepth's ``run_infer.py`` does), and frames/s of both.

    python benchmarks/apis/video_depth_memory.py [--frames 50 200 500] [--size 192 640] [--net-size 64 32]

Models: the synthetic TiO-Depth (``configs/tiodepth/tiodepth-mono_swin-w32_12e_synthkittiraw-depth.py``,
random initialisation: memory and speed do not depend on the weights; its network input ``--net-size`` (W H),
small to keep the run short) as the per-frame model, and a windowed
stand-in of ChronoDepth's schedule (window 10, stride 5, context 5: a 3D convolution over the window). Each
(model, length) runs in its own process, so that its peak RSS (``ru_maxrss``) is its own; the videos are
generated mp4s of moving stripes. The plain loop runs the same per-frame model on a list of all frames and keeps
all depth maps (resized to the frames' size, as the inferencer gives them), then would write them. The last line is
``video depth memory growth 50->500 frames: <ratio>``, the larger peak-RSS ratio of the two inferencer runs.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs/tiodepth/tiodepth-mono_swin-w32_12e_synthkittiraw-depth.py'


def write_video(path: str, frames: int, height: int, width: int) -> None:
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 10., (width, height))
    x = np.arange(width)[None, :, None]
    for i in range(frames):
        stripes = (127 + 100 * np.sin((x + 3 * i) / 7.)).astype(np.uint8)
        writer.write(np.broadcast_to(stripes, (height, width, 3)).copy())
    writer.release()


def windowed_stand_in():
    import torch
    from torch import nn

    class WindowedStandIn(nn.Module):
        video_window = (10, 5, 5)

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(3, 1, 3, padding=1)

        def predict_window(self, images, num_context, context_depths, state):
            depth = nn.functional.softplus(self.conv(images.permute(1, 0, 2, 3)[None]))[0, 0] + 1
            return depth[num_context:], state

    torch.manual_seed(0)
    return WindowedStandIn()


def child(kind: str, video: str, net_size) -> dict:
    """One run in this process: frames, seconds and peak RSS in MiB."""
    import warnings
    warnings.filterwarnings('ignore')
    from perception.apis import VideoDepthInferencer
    from perception.apis.video_depth import Frame, PerFrameDepthAdapter
    from perception.evaluation.depth.functional import resize_depth
    if kind == 'windowed':
        inferencer = VideoDepthInferencer(windowed_stand_in(), show_progress=False)
    else:
        inferencer = VideoDepthInferencer(
            CONFIG, cfg_options={'test_dataloader.dataset.pipeline.2.transforms.0.scale': tuple(net_size)},
            show_progress=False)
    start = time.perf_counter()
    if kind == 'plain loop':
        capture = cv2.VideoCapture(video)
        frames = []
        while True:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(image)
        adapter = PerFrameDepthAdapter(inferencer.model)
        depths = [
            resize_depth(adapter([Frame(i, str(i), image)], None, None)[0], image.shape[:2]).astype(np.float32)
            for i, image in enumerate(frames)
        ]
        count = len(depths)
    else:
        count = sum(1 for _ in inferencer(video))
    seconds = time.perf_counter() - start
    return dict(frames=count, seconds=seconds, peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, nargs='+', default=[50, 200, 500])
    parser.add_argument('--size', type=int, nargs=2, default=[192, 640], help='height width of the videos')
    parser.add_argument('--net-size', type=int, nargs=2, default=[64, 32], help='width height of TiO-Depth\'s input')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--child', nargs=2, metavar=('KIND', 'VIDEO'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch
        torch.set_num_threads(args.threads)
        print(json.dumps(child(*args.child, args.net_size)))
        return
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for frames in args.frames:
            video = os.path.join(folder, f'{frames}.mp4')
            write_video(video, frames, *args.size)
            for kind in ('per-frame', 'windowed', 'plain loop'):
                out = subprocess.run([sys.executable, __file__, '--threads', str(args.threads), '--net-size',
                                      *map(str, args.net_size), '--child', kind, video],
                                     check=True, capture_output=True, text=True, cwd=REPO).stdout
                results[kind, frames] = run = json.loads(out.strip().splitlines()[-1])
                print(f'{kind:>10} {frames:4d} frames of {args.size[0]}x{args.size[1]}: peak RSS '
                      f'{run["peak_mib"]:7.1f} MiB, {run["frames"] / run["seconds"]:6.1f} frames/s', flush=True)
    first, last = args.frames[0], args.frames[-1]
    growth = {kind: results[kind, last]['peak_mib'] / results[kind, first]['peak_mib']
              for kind in ('per-frame', 'windowed', 'plain loop')}
    fps = {kind: results[kind, last]['frames'] / results[kind, last]['seconds'] for kind in ('per-frame', 'plain loop')}
    print(f'peak RSS growth {first}->{last} frames: ' + ', '.join(f'{k} {v:.3f}' for k, v in growth.items()))
    print(f'frames/s at {last} frames: inferencer {fps["per-frame"]:.1f}, plain loop {fps["plain loop"]:.1f} '
          f'(ratio {fps["per-frame"] / fps["plain loop"]:.2f})')
    print(f'video depth memory growth {first}->{last} frames: {max(growth["per-frame"], growth["windowed"]):.3f}')


if __name__ == '__main__':
    main()
