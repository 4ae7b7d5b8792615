"""Multi-scale deformable attention: the compiled kernels against the grid_sample reference."""
import pytest
import torch

from perception.ops import (MultiScaleDeformableAttention, MultiScaleDeformableAttnFunction,
                            multi_scale_deformable_attn, multi_scale_deformable_attn_pytorch)


def make_inputs(shapes, bs=2, num_queries=5, num_heads=2, head_dims=4, num_points=3,
                dtype=torch.float32, loc_range=(0.0, 1.0), seed=0, device='cpu'):
    gen = torch.Generator().manual_seed(seed)
    spatial_shapes = torch.tensor(shapes, dtype=torch.long)
    sizes = spatial_shapes.prod(1)
    level_start_index = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    num_levels = len(shapes)
    value = torch.randn(bs, int(sizes.sum()), num_heads, head_dims, generator=gen, dtype=dtype)
    lo, hi = loc_range
    loc = torch.rand(bs, num_queries, num_heads, num_levels, num_points, 2, generator=gen,
                     dtype=dtype) * (hi - lo) + lo
    attn = torch.rand(bs, num_queries, num_heads, num_levels, num_points, generator=gen,
                      dtype=dtype)
    attn = attn / attn.sum((-1, -2), keepdim=True)
    to = dict(device=device)
    return (value.to(**to), spatial_shapes.to(**to), level_start_index.to(**to), loc.to(**to),
            attn.to(**to))


def run_both(inputs):
    """Outputs and input gradients of the kernel and of the reference, for one random upstream
    gradient."""
    results = []
    for use_kernel in (True, False):
        value, shapes, starts, loc, attn = [t.clone() for t in inputs]
        for t in (value, loc, attn):
            t.requires_grad_(True)
        out = multi_scale_deformable_attn(value, shapes, starts, loc, attn, use_kernel=use_kernel)
        grad = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
        out.backward(grad)
        results.append((out.detach(), value.grad, loc.grad, attn.grad))
    return results


CASES = {
    'four levels': dict(shapes=[(12, 20), (6, 10), (3, 5), (2, 3)]),
    'a 1x1 level': dict(shapes=[(5, 7), (1, 1)]),
    'batch 1': dict(shapes=[(8, 6), (4, 3)], bs=1),
    'batch 3': dict(shapes=[(8, 6), (4, 3)], bs=3),
    'points outside the map': dict(shapes=[(6, 9), (3, 4)], loc_range=(-0.4, 1.4)),
    'single channel per head': dict(shapes=[(6, 9)], head_dims=1, num_heads=3),
}


@pytest.mark.parametrize('case', CASES.values(), ids=CASES.keys())
def test_kernel_matches_reference_float32(case):
    (out, gv, gl, ga), (ref, rgv, rgl, rga) = run_both(make_inputs(**case))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gv, rgv, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ga, rga, rtol=1e-5, atol=1e-5)
    # Location gradients scale with the map size: compare relative to their magnitude.
    torch.testing.assert_close(gl, rgl, rtol=1e-4, atol=1e-4 * max(1.0, rgl.abs().max().item()))


def test_points_outside_contribute_nothing():
    value, shapes, starts, loc, attn = make_inputs([(4, 4)], loc_range=(0.0, 1.0))
    far = torch.full_like(loc, 2.0)
    out = multi_scale_deformable_attn(value, shapes, starts, far, attn)
    assert out.abs().max().item() == 0.0
    # Half a pixel beyond the border still blends with the zero padding.
    edge = loc.clone()
    edge[..., 0] = 1.0 + 0.25 / 4
    out_edge = multi_scale_deformable_attn(value, shapes, starts, edge, attn)
    ref_edge = multi_scale_deformable_attn_pytorch(value, shapes, starts, edge, attn)
    assert out_edge.abs().max().item() > 0
    torch.testing.assert_close(out_edge, ref_edge)


def test_gradcheck_float64():
    value, shapes, starts, loc, attn = make_inputs([(4, 5), (2, 3), (1, 1)], bs=2, num_queries=3,
                                                   num_heads=2, head_dims=3, num_points=2,
                                                   dtype=torch.float64, loc_range=(-0.1, 1.1))
    for t in (value, loc, attn):
        t.requires_grad_(True)

    def fn(v, l, a):
        return MultiScaleDeformableAttnFunction.apply(v, shapes, starts, l, a)

    assert torch.autograd.gradcheck(fn, (value, loc, attn), eps=1e-6, atol=1e-5)


def test_float64_matches_reference_exactly():
    (out, gv, gl, ga), (ref, rgv, rgl, rga) = run_both(
        make_inputs([(7, 5), (3, 2)], dtype=torch.float64, loc_range=(-0.2, 1.2)))
    for a, b in ((out, ref), (gv, rgv), (gl, rgl), (ga, rga)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_non_contiguous_inputs():
    value, shapes, starts, loc, attn = make_inputs([(6, 8), (3, 4)], num_heads=2, head_dims=4)
    # Same values, strided memory: a transposed copy transposed back, and a sliced tensor.
    value_nc = value.transpose(2, 3).contiguous().transpose(2, 3)
    loc_nc = torch.cat([loc, loc], dim=-1)[..., :2]
    attn_nc = attn.transpose(0, 1).contiguous().transpose(0, 1)
    assert not (value_nc.is_contiguous() or loc_nc.is_contiguous() or attn_nc.is_contiguous())
    out = multi_scale_deformable_attn(value_nc, shapes, starts, loc_nc, attn_nc)
    ref = multi_scale_deformable_attn_pytorch(value, shapes, starts, loc, attn)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out).t().contiguous().t() if out.dim() == 2 else torch.randn_like(
        out).transpose(0, 1).contiguous().transpose(0, 1)
    v = value_nc.clone().requires_grad_(True)
    multi_scale_deformable_attn(v, shapes, starts, loc_nc, attn_nc).backward(grad)
    v_ref = value.clone().requires_grad_(True)
    multi_scale_deformable_attn_pytorch(v_ref, shapes, starts, loc, attn).backward(grad)
    torch.testing.assert_close(v.grad, v_ref.grad, rtol=1e-5, atol=1e-5)


def test_zero_queries():
    value, shapes, starts, loc, attn = make_inputs([(4, 4)], num_queries=0)
    value.requires_grad_(True)
    out = multi_scale_deformable_attn(value, shapes, starts, loc, attn)
    assert out.shape == (2, 0, 2 * 4)
    out.sum().backward()
    assert value.grad.shape == value.shape and value.grad.abs().sum().item() == 0


def test_backward_is_deterministic():
    value, shapes, starts, loc, attn = make_inputs([(16, 16), (8, 8)], num_queries=300,
                                                   num_heads=2, head_dims=8, num_points=4)
    grads = []
    for _ in range(2):
        v = value.clone().requires_grad_(True)
        out = multi_scale_deformable_attn(v, shapes, starts, loc, attn)
        out.backward(torch.ones_like(out))
        grads.append(v.grad)
    assert torch.equal(grads[0], grads[1])


def test_shape_errors_are_clear():
    value, shapes, starts, loc, attn = make_inputs([(4, 4)])
    with pytest.raises(RuntimeError, match='keys but spatial_shapes describe'):
        multi_scale_deformable_attn(value[:, :-1], shapes, starts, loc, attn)
    with pytest.raises(RuntimeError, match='share a dtype'):
        MultiScaleDeformableAttnFunction.apply(value, shapes, starts, loc.double(), attn)


def test_layer_matches_mmcv_layer():
    """Same constructor keys and parameter names as mmcv's layer, same output from its weights."""
    from mmcv.ops import MultiScaleDeformableAttention as MMCVMSDA
    torch.manual_seed(0)
    cfg = dict(embed_dims=32, num_heads=4, num_levels=2, num_points=3, dropout=0.0,
               batch_first=True)
    ours, theirs = MultiScaleDeformableAttention(**cfg), MMCVMSDA(**cfg)
    assert set(ours.state_dict()) == set(theirs.state_dict())
    for p in theirs.parameters():  # move off the initial values so the comparison means something
        p.data.normal_(0, 0.1)
    ours.load_state_dict(theirs.state_dict())
    shapes = torch.tensor([[6, 8], [3, 4]])
    starts = torch.tensor([0, 48])
    query = torch.randn(2, 7, 32)
    value = torch.randn(2, 60, 32)
    for ref_dims in (2, 4):
        ref = torch.rand(2, 7, 2, ref_dims)
        kwargs = dict(value=value, reference_points=ref, spatial_shapes=shapes,
                      level_start_index=starts)
        torch.testing.assert_close(ours(query, **kwargs), theirs(query, **kwargs), rtol=1e-5,
                                   atol=1e-5)


def test_layer_initialisation_matches_mmcv():
    from mmcv.ops import MultiScaleDeformableAttention as MMCVMSDA
    ours, theirs = MultiScaleDeformableAttention(num_levels=3), MMCVMSDA(num_levels=3)
    torch.testing.assert_close(ours.sampling_offsets.bias, theirs.sampling_offsets.bias)
    assert ours.attention_weights.weight.abs().sum() == 0


def test_layer_builds_from_registry_with_mmcv_keys():
    from mmengine.registry import DefaultScope

    from perception.registry import MODELS
    cfg = dict(type='MultiScaleDeformableAttention', embed_dims=16, num_heads=2, num_levels=1,
               num_points=2, im2col_step=64, dropout=0.1, batch_first=False, norm_cfg=None,
               init_cfg=None, value_proj_ratio=1.0)
    with DefaultScope.overwrite_default_scope('perception'):
        layer = MODELS.build(cfg)
    assert isinstance(layer, MultiScaleDeformableAttention)


def test_layer_6d_reference_boxes():
    """MonoDETR's (x, y, l, r, t, b) boxes scale offsets by the width l + r and height t + b."""
    torch.manual_seed(0)
    layer = MultiScaleDeformableAttention(embed_dims=16, num_heads=2, num_levels=1, num_points=2,
                                          dropout=0.0, batch_first=True, use_kernel=False)
    shapes = torch.tensor([[5, 6]])
    query, value = torch.randn(1, 3, 16), torch.randn(1, 30, 16)
    box6 = torch.rand(1, 3, 1, 6) * 0.3
    box4 = torch.cat([box6[..., :2], box6[..., 2:3] + box6[..., 3:4],
                      box6[..., 4:5] + box6[..., 5:6]], -1)
    kwargs = dict(value=value, spatial_shapes=shapes)
    torch.testing.assert_close(
        layer(query, reference_points=box6, **kwargs), layer(query, reference_points=box4,
                                                             **kwargs))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_matches_cpu():
    from perception import _ext
    if not _ext.with_cuda:
        pytest.fail('a CUDA device is present but perception._ext was built without CUDA')
    for case in CASES.values():
        inputs = make_inputs(**case)
        cpu = run_both(inputs)[0]
        outs = []
        value, shapes, starts, loc, attn = [t.cuda() for t in inputs]
        for t in (value, loc, attn):
            t.requires_grad_(True)
        out = multi_scale_deformable_attn(value, shapes, starts, loc, attn)
        out.backward(torch.linspace(-1, 1, out.numel(), device='cuda').view_as(out))
        outs = (out.detach(), value.grad, loc.grad, attn.grad)
        for a, b in zip(outs, cpu):
            torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-4 * max(1, b.abs().max().item()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_errors_are_clear():
    value, shapes, starts, loc, attn = (t.cuda() for t in make_inputs([(4, 4)]))
    with pytest.raises(RuntimeError, match='keys but spatial_shapes describe'):
        multi_scale_deformable_attn(value[:, :-1], shapes, starts, loc, attn)
    with pytest.raises(RuntimeError, match='share a dtype'):
        MultiScaleDeformableAttnFunction.apply(value, shapes, starts, loc.double(), attn)
    with pytest.raises(RuntimeError, match='on one device'):
        MultiScaleDeformableAttnFunction.apply(value, shapes, starts, loc.cpu(), attn)
