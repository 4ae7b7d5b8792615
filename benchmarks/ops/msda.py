"""Multi-scale deformable attention on the CPU: perception's kernel against mmcv's
``multi_scale_deformable_attn_pytorch`` (what every mmdet/mmdet3d user runs without CUDA).

MonoDETR shapes: batch 2, levels 48x160 / 24x80 / 12x40 / 6x20, 8 heads x 32 channels, 4 points,
10200 queries (encoder self-attention) and 550 queries (decoder, 50 x 11 groups), 2 threads.

    python benchmarks/ops/msda.py [--repeat 5] [--threads 2]

Prints a table, then as its last line ``msda speedup fwd=<x> bwd=<y> mem=<z>``: reference / ours on
the encoder shape (realistic sampling locations, see :func:`make_inputs`), for the forward time, the backward
time and the peak memory of forward + backward. Peak memory is the rise of the peak resident set (VmHWM, reset
just before the call)
of a fresh process over its size before the call.
"""
import argparse
import json
import math
import statistics
import time

import torch

from memory import in_child, peak_growth

LEVELS = [(48, 160), (24, 80), (12, 40), (6, 20)]
# name: (queries, uniform locations)
SHAPES = {'encoder': (10200, False), 'decoder': (550, False), 'encoder-uniform': (10200, True)}


def make_inputs(num_queries, bs=2, heads=8, channels=32, points=4, uniform=False, seed=0):
    """Inputs at MonoDETR shapes.

    Sampling locations are what the layer produces in a trained model: a reference point per
    query (the encoder's queries sit on every pixel of every level, as in Deformable DETR; the
    decoder's are spread over the image) plus offsets of a few pixels on each level (head
    directions of the Deformable DETR initialisation, point k at k + 1 pixels, plus noise of 2
    pixels). ``uniform=True`` instead draws them uniformly over the image: a stress case with no
    memory locality at all.
    """
    gen = torch.Generator().manual_seed(seed)
    shapes = torch.tensor(LEVELS, dtype=torch.long)
    sizes = shapes.prod(1)
    starts = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    value = torch.randn(bs, int(sizes.sum()), heads, channels, generator=gen)
    loc_shape = (bs, num_queries, heads, len(LEVELS), points, 2)
    if uniform:
        loc = torch.rand(*loc_shape, generator=gen)
    else:
        if num_queries == int(sizes.sum()):
            ref = torch.cat([
                torch.stack(torch.meshgrid((torch.arange(w) + 0.5) / w, (torch.arange(h) + 0.5) / h,
                                           indexing='xy'), -1).reshape(-1, 2) for h, w in LEVELS
            ])
        else:
            ref = torch.rand(num_queries, 2, generator=gen)
        theta = torch.arange(heads) * (2 * math.pi / heads)
        direction = torch.stack([theta.cos(), theta.sin()], -1)
        direction = direction / direction.abs().max(-1, keepdim=True)[0]
        pixels = direction[:, None, None, :] * torch.arange(1, points + 1)[None, None, :, None]
        pixels = pixels + 2 * torch.randn(*loc_shape, generator=gen)
        wh = shapes.flip(-1).float()[None, None, None, :, None, :]
        loc = ref[None, :, None, None, None, :] + pixels / wh
    attn = torch.rand(bs, num_queries, heads, len(LEVELS), points, generator=gen).softmax(-1)
    return value, shapes, starts, loc, attn


def get_impl(name):
    if name == 'ours':
        from perception.ops import multi_scale_deformable_attn
        return lambda v, s, i, loc, a: multi_scale_deformable_attn(v, s, i, loc, a)
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
    return lambda v, s, i, loc, a: multi_scale_deformable_attn_pytorch(v, s, loc, a)


def time_pair(num_queries, repeat, uniform=False):
    """Forward and backward times (ms, median) of both implementations, measured in alternation so
    that a change of load on the machine weighs on both alike."""
    fns = {name: get_impl(name) for name in ('ours', 'mmcv')}
    value, shapes, starts, loc, attn = make_inputs(num_queries, uniform=uniform)
    times = {name: ([], []) for name in fns}
    results = {}
    for it in range(repeat + 1):  # the first round warms up
        for name, fn in fns.items():
            v, l, a = (t.clone().requires_grad_(True) for t in (value, loc, attn))
            t0 = time.perf_counter()
            out = fn(v, shapes, starts, l, a)
            t1 = time.perf_counter()
            out.backward(torch.ones_like(out))
            t2 = time.perf_counter()
            if it:
                times[name][0].append(t1 - t0)
                times[name][1].append(t2 - t1)
            results[name] = (out.detach(), (v.grad, l.grad, a.grad))
    return {
        name: (statistics.median(fwd) * 1e3, statistics.median(bwd) * 1e3, *results[name])
        for name, (fwd, bwd) in times.items()
    }


def peak_memory_child(name, num_queries, threads, uniform=False):
    """Runs in a fresh process: the peak extra memory of one forward + backward, in bytes."""
    torch.set_num_threads(threads)
    fn = get_impl(name)
    value, shapes, starts, loc, attn = make_inputs(num_queries, uniform=uniform)
    v, lc, a = (t.clone().requires_grad_(True) for t in (value, loc, attn))
    grad = torch.ones(value.shape[0], num_queries, value.shape[2] * value.shape[3])
    return peak_growth(lambda: fn(v, shapes, starts, lc, a).backward(grad))


def peak_memory(name, num_queries, threads, uniform=False):
    return in_child('msda', 'peak_memory_child', name, num_queries, threads, uniform)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows, figures = [], {}
    for shape, (num_queries, uniform) in SHAPES.items():
        res = {}
        for name, (fwd, bwd, out, grads) in time_pair(num_queries, args.repeat, uniform).items():
            mem = peak_memory(name, num_queries, args.threads, uniform)
            res[name] = dict(fwd_ms=fwd, bwd_ms=bwd, peak_mb=mem / 2**20, out=out, grads=grads)
        max_diff = (res['ours']['out'] - res['mmcv']['out']).abs().max().item()
        (gv, gl, ga), (rv, rl, ra) = res['ours']['grads'], res['mmcv']['grads']
        grad_diff = max((a - b).abs().max().item() / b.abs().max().item() for a, b in ((gv, rv), (ga, ra)))
        # A location exactly on a pixel row or column sits on a kink of the bilinear weights: its
        # gradient is one-sided, and float rounding of loc * size - 0.5 may pick either side.
        kinks = ((gl - rl).abs() > 1e-3 * rl.abs().max()).float().mean().item()
        for name in ('mmcv', 'ours'):
            r = res[name]
            rows.append((shape, num_queries, name, r['fwd_ms'], r['bwd_ms'], r['peak_mb']))
        figures[shape] = dict(
            fwd=res['mmcv']['fwd_ms'] / res['ours']['fwd_ms'],
            bwd=res['mmcv']['bwd_ms'] / res['ours']['bwd_ms'],
            mem=res['mmcv']['peak_mb'] / max(res['ours']['peak_mb'], 1e-6),
            max_abs_diff_out=max_diff, max_rel_diff_grad=grad_diff, loc_grad_kinks=kinks,
            **{f'{n}_{k}': res[n][k] for n in res for k in ('fwd_ms', 'bwd_ms', 'peak_mb')})

    print(f'torch {torch.__version__}, {args.threads} threads, median of {args.repeat} runs')
    print(f"{'shape':<16} {'queries':>7} {'impl':<5} {'fwd ms':>9} {'bwd ms':>9} {'peak MB':>9}")
    for shape, q, name, fwd, bwd, mem in rows:
        print(f'{shape:<16} {q:>7} {name:<5} {fwd:>9.1f} {bwd:>9.1f} {mem:>9.1f}')
    for shape, f in figures.items():
        print(f"{shape}: fwd x{f['fwd']:.2f}  bwd x{f['bwd']:.2f}  mem x{f['mem']:.2f}  "
              f"(max |out diff| {f['max_abs_diff_out']:.2e}, max rel diff of value/weight grads "
              f"{f['max_rel_diff_grad']:.2e}, location grads on a bilinear kink "
              f"{f['loc_grad_kinks']:.1e})")
    if args.json:
        with open(args.json, 'w') as fh:
            json.dump(figures, fh, indent=2)
    enc = figures['encoder']
    print(f"msda speedup fwd={enc['fwd']:.2f} bwd={enc['bwd']:.2f} mem={enc['mem']:.2f}")


if __name__ == '__main__':
    main()
