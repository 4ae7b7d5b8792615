"""Multi-scale deformable attention on a CUDA device: perception's CUDA kernel against the
``grid_sample`` reference (``multi_scale_deformable_attn_pytorch``, what mmcv runs when its CUDA
ops are not built), at the shapes of ``benchmarks/ops/msda.py`` (MonoDETR, batch 2) and at the
official training batch of 16.

    python benchmarks/ops/msda_cuda.py [--repeat 20]

Times are CUDA-event medians after warm-up, measured in alternation; peak memory is
``torch.cuda.max_memory_allocated`` above the inputs during one forward + backward. The last line
is ``msda cuda speedup fwd=<x> bwd=<y> mem=<z>`` for the encoder shape at batch 2.
"""
import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from msda import make_inputs  # noqa: E402  (same shapes and sampling locations as the CPU bench)

from perception.ops import multi_scale_deformable_attn, multi_scale_deformable_attn_pytorch  # noqa: E402

IMPLS = {
    'ours': lambda v, s, i, loc, a: multi_scale_deformable_attn(v, s, i, loc, a),
    'grid_sample': lambda v, s, i, loc, a: multi_scale_deformable_attn_pytorch(v, s, i, loc, a),
}
CASES = {'encoder': (10200, 2), 'decoder': (550, 2), 'encoder-b16': (10200, 16)}


def inputs_for(num_queries, bs):
    if bs == 2:
        return [t.cuda() for t in make_inputs(num_queries)]
    # repeat the batch-2 inputs (the generator draws per batch element in one call)
    v, s, i, l, a = make_inputs(num_queries)
    rep = bs // 2
    return [t.cuda() for t in (v.repeat(rep, 1, 1, 1), s, i, l.repeat(rep, 1, 1, 1, 1, 1),
                               a.repeat(rep, 1, 1, 1, 1))]


def one_pass(fn, value, shapes, starts, loc, attn):
    v, l, a = (t.clone().requires_grad_(True) for t in (value, loc, attn))
    e0, e1, e2 = (torch.cuda.Event(enable_timing=True) for _ in range(3))
    e0.record()
    out = fn(v, shapes, starts, l, a)
    e1.record()
    out.backward(torch.ones_like(out))
    e2.record()
    torch.cuda.synchronize()
    return e0.elapsed_time(e1), e1.elapsed_time(e2), out.detach(), (v.grad, l.grad, a.grad)


def peak(fn, value, shapes, starts, loc, attn):
    v, l, a = (t.clone().requires_grad_(True) for t in (value, loc, attn))
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = fn(v, shapes, starts, l, a)
    out.backward(torch.ones_like(out))
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=20)
    args = parser.parse_args()
    assert torch.cuda.is_available(), 'this benchmark needs a CUDA device'
    print(f'torch {torch.__version__}, {torch.cuda.get_device_name()}, median of {args.repeat}')
    print(f"{'case':<12} {'impl':<12} {'fwd ms':>8} {'bwd ms':>8} {'peak MB':>9}")
    figures = {}
    for case, (num_queries, bs) in CASES.items():
        inputs = inputs_for(num_queries, bs)
        times = {name: ([], []) for name in IMPLS}
        results = {}
        for it in range(args.repeat + 3):
            for name, fn in IMPLS.items():
                fwd, bwd, out, grads = one_pass(fn, *inputs)
                if it >= 3:
                    times[name][0].append(fwd)
                    times[name][1].append(bwd)
                results[name] = (out, grads)
        res = {}
        for name, fn in IMPLS.items():
            res[name] = (statistics.median(times[name][0]), statistics.median(times[name][1]),
                         peak(fn, *inputs))
            print(f'{case:<12} {name:<12} {res[name][0]:>8.3f} {res[name][1]:>8.3f} '
                  f'{res[name][2]:>9.1f}')
        (o1, g1), (o2, g2) = results['ours'], results['grid_sample']
        diff = (o1 - o2).abs().max().item()
        gdiff = max((a - b).abs().max().item() / b.abs().max().item()
                    for a, b in ((g1[0], g2[0]), (g1[2], g2[2])))
        f = [res['grid_sample'][k] / res['ours'][k] for k in range(3)]
        figures[case] = f
        print(f'{case}: fwd x{f[0]:.2f} bwd x{f[1]:.2f} mem x{f[2]:.2f} '
              f'(max |out diff| {diff:.2e}, max rel diff value/weight grads {gdiff:.2e})')
    enc = figures['encoder']
    print(f'msda cuda speedup fwd={enc[0]:.2f} bwd={enc[1]:.2f} mem={enc[2]:.2f}')


if __name__ == '__main__':
    main()
