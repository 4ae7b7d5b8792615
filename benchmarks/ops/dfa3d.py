"""Multi-scale 3D deformable attention (DFA3D) on the CPU: perception's kernel against the
materialised-volume reference (trilinear ``grid_sample`` of ``F ⊗ D``, what DFA3D computes without
building).

BEVFormer-small shapes: 6 cameras (folded into the batch), 1 level of 15x25 (the stride-32 map of
480x800), 112 depth bins, 8 heads x 32 channels, 8 points per head over the 4 pillar points of a
150x150 BEV grid, 2 threads. As in BEVFormer's spatial cross-attention, each camera attends only from
the BEV queries that project into it, padded to the largest count over the cameras.

    python benchmarks/ops/dfa3d.py [--repeat 5] [--threads 2]

Prints a table, then as its last line ``dfa3d speedup fwd=<x> bwd=<y> mem=<z>``: reference / ours
for the forward time, the backward time and the peak memory of forward + backward. Peak memory is
the rise of the peak resident set (VmHWM, reset just before the call) of a fresh process over its
size before the call.
"""
import argparse
import math
import statistics
import time

import torch

from memory import in_child, peak_growth

IMAGE = (480, 800)  # H, W
LEVEL = (15, 25)  # stride 32
NUM_BINS = 112  # [2, 58) m in 0.5 m bins
DEPTH_RANGE = (2.0, 58.0)
HEADS, CHANNELS, POINTS = 8, 32, 8
BEV = 150  # cells per side over [-51.2, 51.2] m
PILLAR_Z = (-5.0, 3.0)  # m, LiDAR frame; 4 points per pillar as BEVFormer
NUM_ANCHORS = 4
# nuScenes-like ring: (yaw in degrees, horizontal field of view in degrees), x forward, y left
CAMERAS = ((0, 70), (-55, 70), (-110, 70), (180, 110), (110, 70), (55, 70))


def bev_reference_points():
    """(6, Q, 4, 3) normalised (u, v, d) of the BEV queries seen by each camera (rebatched as
    BEVFormer does, padding with zeros) and Q."""
    cells = (torch.arange(BEV) + 0.5) / BEV * 102.4 - 51.2
    x, y = torch.meshgrid(cells, cells, indexing='ij')
    z = (torch.arange(NUM_ANCHORS) + 0.5) / NUM_ANCHORS * (PILLAR_Z[1] - PILLAR_Z[0]) + PILLAR_Z[0]
    points = torch.stack(torch.broadcast_tensors(x[..., None], y[..., None], z), -1).view(-1, 4, 3)
    per_camera = []
    for yaw, fov in CAMERAS:
        yaw = math.radians(yaw)
        forward = torch.tensor([math.cos(yaw), math.sin(yaw), 0.0])
        right = torch.tensor([math.sin(yaw), -math.cos(yaw), 0.0])
        depth = points @ forward
        focal = IMAGE[1] / 2 / math.tan(math.radians(fov) / 2)
        u = 0.5 + focal * (points @ right) / depth.clamp(min=1e-5) / IMAGE[1]
        v = 0.5 - focal * points[..., 2] / depth.clamp(min=1e-5) / IMAGE[0]
        d = (depth - DEPTH_RANGE[0]) / (DEPTH_RANGE[1] - DEPTH_RANGE[0])
        seen = (depth > 1e-5) & (u > 0) & (u < 1) & (v > 0) & (v < 1)
        per_camera.append(torch.stack([u, v, d], -1)[seen.any(-1)])
    num_queries = max(len(p) for p in per_camera)
    ref = torch.zeros(len(CAMERAS), num_queries, NUM_ANCHORS, 3)
    for cam, p in enumerate(per_camera):
        ref[cam, :len(p)] = p
    return ref, num_queries


def make_inputs(seed=0):
    """Inputs at BEVFormer-small shapes. Sampling locations are those of a trained layer: each
    pillar point plus offsets of a few pixels and bins (the DFA3D initialisation plus noise of 2
    pixels and 2 bins)."""
    from perception.ops import ray_offsets
    gen = torch.Generator().manual_seed(seed)
    ref, num_queries = bev_reference_points()
    bs = len(CAMERAS)
    shapes = torch.tensor([LEVEL])
    starts = torch.tensor([0])
    num_keys = LEVEL[0] * LEVEL[1]
    value = torch.randn(bs, num_keys, HEADS, CHANNELS, generator=gen)
    # one distribution per pixel, shared by the heads
    depth = torch.randn(bs, num_keys, 1, NUM_BINS, generator=gen).mul(2).softmax(-1)
    depth = depth.expand(-1, -1, HEADS, -1)
    shape = (bs, num_queries, HEADS, 1, POINTS)
    thetas = torch.arange(HEADS) * (2 * math.pi / HEADS)
    depth_steps = ((thetas.cos() + thetas.sin()) / 2)[:, None, None] * torch.arange(1, POINTS + 1)
    offsets = torch.cat([ray_offsets(HEADS, 1, POINTS), depth_steps[..., None]], -1)
    offsets = offsets + 2 * torch.randn(*shape, 3, generator=gen)
    offsets = offsets / torch.tensor([LEVEL[1], LEVEL[0], NUM_BINS])
    offsets = offsets.view(*shape[:4], POINTS // NUM_ANCHORS, NUM_ANCHORS, 3)
    loc = (ref[:, :, None, None, None] + offsets).flatten(4, 5)
    attn = torch.randn(*shape, generator=gen).softmax(-1)
    return value, depth, shapes, starts, loc, attn


def get_impl(name):
    from perception.ops import (multi_scale_3d_deformable_attn,
                                multi_scale_3d_deformable_attn_materialised)
    return (multi_scale_3d_deformable_attn
            if name == 'ours' else multi_scale_3d_deformable_attn_materialised)


def leaves(inputs):
    value, depth, shapes, starts, loc, attn = inputs
    value, loc, attn = (t.clone().requires_grad_(True) for t in (value, loc, attn))
    # the distribution shared by the heads stays an expand, as a model passes it
    depth_shared = depth[:, :, :1].clone().requires_grad_(True)
    return value, depth_shared, shapes, starts, loc, attn


def call(fn, value, depth_shared, shapes, starts, loc, attn):
    depth = depth_shared.expand(-1, -1, HEADS, -1)
    return fn(value, depth, shapes, starts, loc, attn)


def time_pair(repeat):
    """Forward and backward times (ms, median) of both implementations, measured in alternation so
    that a change of load on the machine weighs on both alike; and their results."""
    inputs = make_inputs()
    times = {name: ([], []) for name in ('ours', 'materialised')}
    results = {}
    for it in range(repeat + 1):  # the first round warms up
        for name in times:
            fn = get_impl(name)
            args = leaves(inputs)
            t0 = time.perf_counter()
            out = call(fn, *args)
            t1 = time.perf_counter()
            out.backward(torch.ones_like(out))
            t2 = time.perf_counter()
            if it:
                times[name][0].append(t1 - t0)
                times[name][1].append(t2 - t1)
            value, depth, _, _, loc, attn = args
            results[name] = (out.detach(), (value.grad, depth.grad, loc.grad, attn.grad))
            del out, args
    return inputs, {
        name: (statistics.median(fwd) * 1e3, statistics.median(bwd) * 1e3, *results[name])
        for name, (fwd, bwd) in times.items()
    }


def peak_memory_child(name, threads):
    """Runs in a fresh process: the peak extra memory of one forward + backward, in bytes."""
    torch.set_num_threads(threads)
    fn = get_impl(name)
    args = leaves(make_inputs())
    value, loc = args[0], args[4]
    grad = torch.ones(value.shape[0], loc.shape[1], HEADS * CHANNELS)
    return peak_growth(lambda: call(fn, *args).backward(grad))


def peak_memory(name, threads):
    return in_child('dfa3d', 'peak_memory_child', name, threads)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    inputs, res = time_pair(args.repeat)
    mem = {name: peak_memory(name, args.threads) / 2**20 for name in res}
    (out, grads), (ref, ref_grads) = (res[n][2:] for n in ('ours', 'materialised'))
    out_diff = (out - ref).abs().max().item() / ref.abs().max().item()
    grad_diff = {
        name: (a - b).abs().max().item() / b.abs().max().item()
        for name, a, b in zip(('value', 'depth', 'loc', 'attn'), grads, ref_grads)
    }
    loc = inputs[4]
    inside = ((loc > 0) & (loc < 1)).all(-1).float().mean().item()

    print(f'torch {torch.__version__}, {args.threads} threads, median of {args.repeat} runs')
    print(f'{len(CAMERAS)} cameras x {loc.shape[1]} queries (of {BEV}x{BEV}), level {LEVEL[0]}x'
          f'{LEVEL[1]}, {NUM_BINS} bins, {HEADS} heads x {CHANNELS} channels, {POINTS} points; '
          f'{inside:.0%} of the points inside the volume')
    print(f"{'impl':<13} {'fwd ms':>9} {'bwd ms':>9} {'peak MB':>9}")
    for name in ('materialised', 'ours'):
        print(f'{name:<13} {res[name][0]:>9.1f} {res[name][1]:>9.1f} {mem[name]:>9.1f}')
    print(f'max relative difference: output {out_diff:.1e}, gradients ' +
          ', '.join(f'{k} {v:.1e}' for k, v in grad_diff.items()))
    fwd = res['materialised'][0] / res['ours'][0]
    bwd = res['materialised'][1] / res['ours'][1]
    print(f"dfa3d speedup fwd={fwd:.2f} bwd={bwd:.2f} mem={mem['materialised'] / mem['ours']:.2f}")


if __name__ == '__main__':
    main()
