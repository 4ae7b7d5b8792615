"""Frames/s and peak memory of ChronoDepth at the official sizes (SVD img2vid-xt UNet, 1.52 B parameters), one
window of the context-aware inference (10 frames, 5 Euler steps, VAE encode and decode), random weights (the
speed does not depend on them).

    python benchmarks/models/chronodepth.py                                  # CPU, fp32, 64x128 frames
    python benchmarks/models/chronodepth.py --device cuda --size 576 768     # GPU, fp16 UNet (needs one)

Two windows run: the first (10 new frames, as the start of a video) and a later one (5 context + 5 new frames);
the figures are of the later one, which is what a long video repeats. Peak memory: the process's peak RSS on
the CPU (``ru_maxrss``), ``torch.cuda.max_memory_allocated`` on a GPU.
"""
import argparse
import resource
import time
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs/chronodepth/chronodepth_svd_official.py'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--size', type=int, nargs=2, default=(64, 128), metavar=('H', 'W'),
                        help='frame size, multiples of 64')
    parser.add_argument('--steps', type=int, default=5, help='denoising steps per window')
    args = parser.parse_args()

    from perception.registry import MODELS
    cfg = Config.fromfile(str(CONFIG))
    init_default_scope(cfg.get('default_scope', 'perception'))
    cfg.model.num_inference_steps = args.steps
    cfg.model.seed = 0
    start = time.perf_counter()
    model = MODELS.build(cfg.model).to(args.device).eval()
    dtype = model.unet.dtype
    build = time.perf_counter() - start
    params = sum(p.numel() for p in model.unet.parameters())
    height, width = args.size
    n_tokens, chunk_size, context = model.video_window
    images = torch.rand(n_tokens + chunk_size, 3, height, width, device=args.device)
    if args.device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    _, state = model.predict_window(images[:n_tokens], 0, None, None)
    sync = torch.cuda.synchronize if args.device.startswith('cuda') else (lambda: None)
    sync()
    start = time.perf_counter()
    depth, state = model.predict_window(images[n_tokens - context:], context, None, state)
    sync()
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() if args.device.startswith('cuda') else
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**30
    print(f'UNet {params / 1e9:.2f} B parameters, {dtype}, built in {build:.1f} s on {args.device}')
    print(f'one window ({context} context + {chunk_size} new frames of {height}x{width}, {args.steps} steps): '
          f'{seconds:.1f} s, {chunk_size / seconds:.3f} frames/s')
    print(f'peak memory: {peak:.2f} GiB ({"GPU allocated" if args.device.startswith("cuda") else "RSS"})')


if __name__ == '__main__':
    main()
