"""Multi-scale 3D deformable attention (DFA3D): the compiled kernels against the two references (the
trilinear grid_sample of the materialised F x D volume and the two-step form)."""
import pytest
import torch

from perception.ops import (MultiScale3DDeformableAttention, MultiScale3DDeformableAttnFunction,
                            depth_scores, multi_scale_3d_deformable_attn,
                            multi_scale_3d_deformable_attn_materialised,
                            multi_scale_3d_deformable_attn_pytorch, multi_scale_deformable_attn)

IMPLS = {
    'kernel': multi_scale_3d_deformable_attn,
    'two-step': multi_scale_3d_deformable_attn_pytorch,
    'materialised': multi_scale_3d_deformable_attn_materialised,
}


def make_inputs(shapes, bs=2, num_queries=5, num_heads=2, head_dims=4, num_bins=6, num_points=3,
                dtype=torch.float32, loc_range=((0.0, 1.0), ) * 3, seed=0):
    """Random inputs; ``loc_range`` gives the (low, high) range of u, v and d."""
    gen = torch.Generator().manual_seed(seed)
    spatial_shapes = torch.tensor(shapes, dtype=torch.long)
    sizes = spatial_shapes.prod(1)
    level_start_index = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    num_keys, num_levels = int(sizes.sum()), len(shapes)
    value = torch.randn(bs, num_keys, num_heads, head_dims, generator=gen, dtype=dtype)
    depth = torch.rand(bs, num_keys, num_heads, num_bins, generator=gen, dtype=dtype)
    depth = depth / depth.sum(-1, keepdim=True)
    lo = torch.tensor([r[0] for r in loc_range], dtype=dtype)
    hi = torch.tensor([r[1] for r in loc_range], dtype=dtype)
    loc = torch.rand(bs, num_queries, num_heads, num_levels, num_points, 3, generator=gen,
                     dtype=dtype) * (hi - lo) + lo
    attn = torch.rand(bs, num_queries, num_heads, num_levels, num_points, generator=gen,
                      dtype=dtype)
    attn = attn / attn.sum((-1, -2), keepdim=True)
    return value, depth, spatial_shapes, level_start_index, loc, attn


def run(impl, inputs, grad=None):
    """Output and the gradients of value, depth, locations and weights for one upstream gradient
    (a fixed ramp unless given)."""
    value, depth, shapes, starts, loc, attn = inputs
    # detach() keeps the strides (a clone of an expanded tensor would not)
    value, depth, loc, attn = (t.detach().requires_grad_(True) for t in (value, depth, loc, attn))
    out = IMPLS[impl](value, depth, shapes, starts, loc, attn)
    if grad is None:
        grad = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    out.backward(grad)
    return out.detach(), value.grad, depth.grad, loc.grad, attn.grad


def assert_results_close(res, ref, rtol, atol):
    names = ('output', 'grad value', 'grad depth', 'grad locations', 'grad weights')
    for name, a, b in zip(names, res, ref):
        # Location gradients scale with the map and bin counts: compare relative to their size.
        scale = max(1.0, b.abs().max().item()) if name == 'grad locations' else 1.0
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol * scale, msg=lambda m: f'{name}: {m}')


OUTSIDE = (-0.4, 1.4)
CASES = {
    'two levels': dict(shapes=[(6, 8), (3, 4)]),
    'a 1x1 level': dict(shapes=[(5, 7), (1, 1)]),
    'one depth bin': dict(shapes=[(4, 5)], num_bins=1),
    'batch 1': dict(shapes=[(6, 5), (3, 2)], bs=1),
    'batch 3': dict(shapes=[(6, 5), (3, 2)], bs=3),
    'points outside in u': dict(shapes=[(6, 5), (3, 2)], loc_range=(OUTSIDE, (0, 1), (0, 1))),
    'points outside in v': dict(shapes=[(6, 5), (3, 2)], loc_range=((0, 1), OUTSIDE, (0, 1))),
    'points outside in d': dict(shapes=[(6, 5), (3, 2)], loc_range=((0, 1), (0, 1), OUTSIDE)),
    'single channel per head': dict(shapes=[(6, 9)], head_dims=1, num_heads=3),
}


@pytest.mark.parametrize('case', CASES.values(), ids=CASES.keys())
def test_kernel_matches_both_references_float32(case):
    inputs = make_inputs(**case)
    kernel = run('kernel', inputs)
    for ref in ('two-step', 'materialised'):
        assert_results_close(kernel, run(ref, inputs), rtol=1e-5, atol=1e-5)


def test_references_agree_float64():
    """The two-step form is the trilinear sampling of F x D (the paper's equivalence)."""
    inputs = make_inputs([(5, 4), (2, 3)], num_bins=5, dtype=torch.float64,
                         loc_range=((-0.2, 1.2), ) * 3)
    assert_results_close(run('two-step', inputs), run('materialised', inputs), rtol=1e-10,
                         atol=1e-10)
    assert_results_close(run('kernel', inputs), run('materialised', inputs), rtol=1e-10,
                         atol=1e-10)


GRADCHECK_CASES = {
    'two levels and a 1x1 one, points inside and out': dict(
        shapes=[(4, 5), (2, 3), (1, 1)], num_bins=4, loc_range=((-0.1, 1.1), ) * 3),
    'one depth bin': dict(shapes=[(3, 4)], num_bins=1),
}


@pytest.mark.parametrize('case', GRADCHECK_CASES.values(), ids=GRADCHECK_CASES.keys())
def test_gradcheck_float64(case):
    value, depth, shapes, starts, loc, attn = make_inputs(
        **case, bs=2, num_queries=3, num_heads=2, head_dims=3, num_points=2, dtype=torch.float64)
    for t in (value, depth, loc, attn):
        t.requires_grad_(True)

    def fn(v, d, l, a):
        return MultiScale3DDeformableAttnFunction.apply(v, d, shapes, starts, l, a)

    assert torch.autograd.gradcheck(fn, (value, depth, loc, attn), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize('coord', [0, 1, 2], ids=['u', 'v', 'd'])
def test_points_outside_contribute_nothing(coord):
    inputs = make_inputs([(4, 4)], num_bins=4)
    value, depth, shapes, starts, loc, attn = inputs
    for far in (-0.5, 2.0):  # beyond the half cell of zero padding on either side
        loc_far = loc.clone()
        loc_far[..., coord] = far
        out, *grads = run('kernel', (value, depth, shapes, starts, loc_far, attn))
        assert out.abs().max().item() == 0.0
        assert all(g.abs().max().item() == 0.0 for g in grads)
    # Within half a cell beyond the border, the point still blends with the zero padding.
    loc_edge = loc.clone()
    loc_edge[..., coord] = 1.0 + 0.25 / 4
    edge = (value, depth, shapes, starts, loc_edge, attn)
    out_edge = run('kernel', edge)
    assert out_edge[0].abs().max().item() > 0
    assert_results_close(out_edge, run('materialised', edge), rtol=1e-5, atol=1e-5)


def test_uniform_depth_reduces_to_msda():
    """With a depth distribution of ones and d away from the outer half bins, every depth score is 1
    and DFA3D is 2D deformable attention at (u, v)."""
    num_bins = 5
    value, depth, shapes, starts, loc, attn = make_inputs(
        [(6, 7), (3, 4)], num_bins=num_bins,
        loc_range=((0, 1), (0, 1), (0.5 / num_bins, 1 - 0.5 / num_bins)))
    out = multi_scale_3d_deformable_attn(value, torch.ones_like(depth), shapes, starts, loc, attn)
    ref = multi_scale_deformable_attn(value, shapes, starts, loc[..., :2].contiguous(), attn)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_depth_scores():
    """Corner scores interpolate each corner's distribution linearly along d, and are 0 off the
    map."""
    depth = torch.arange(2 * 4 * 3, dtype=torch.float64).view(1, 4, 1, 6).expand(-1, -1, 2, -1)
    shapes = torch.tensor([[2, 2]])
    # u, v at the centre of the map: all four pixels are corners with weight 1/4; d at bin 2.5.
    loc = torch.tensor([0.5, 0.5, 3.0 / 6], dtype=torch.float64).view(1, 1, 1, 1, 1, 3)
    loc = loc.expand(1, 1, 2, 1, 1, 3)
    scores = depth_scores(depth, shapes, loc)
    assert scores.shape == (1, 1, 2, 1, 1, 4)
    expected = torch.tensor([2.5, 8.5, 14.5, 20.5], dtype=torch.float64)  # key k: 6 k + 2.5
    torch.testing.assert_close(scores[0, 0, 0, 0, 0], expected)
    off_map = depth_scores(depth, shapes, loc + torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64))
    assert (off_map[..., [1, 3]] == 0).all() and (off_map[..., [0, 2]] > 0).all()


def test_non_contiguous_inputs():
    value, depth, shapes, starts, loc, attn = make_inputs([(6, 8), (3, 4)], num_heads=2,
                                                          head_dims=4)
    # Same values, strided memory: transposed copies transposed back, a slice, and a distribution
    # shared by the heads as an expand (stride 0).
    value_nc = value.transpose(2, 3).contiguous().transpose(2, 3)
    loc_nc = torch.cat([loc, loc], dim=-1)[..., :3]
    attn_nc = attn.transpose(0, 1).contiguous().transpose(0, 1)
    depth_nc = depth[:, :, :1].expand(-1, -1, 2, -1)
    assert not any(t.is_contiguous() for t in (value_nc, loc_nc, attn_nc, depth_nc))
    grad = torch.randn(5, 2, 8).transpose(0, 1)
    assert not grad.is_contiguous()
    res = run('kernel', (value_nc, depth_nc, shapes, starts, loc_nc, attn_nc), grad)
    ref = run('materialised', (value, depth_nc.contiguous(), shapes, starts, loc, attn), grad)
    assert_results_close(res, ref, rtol=1e-5, atol=1e-5)


def test_zero_queries():
    value, depth, shapes, starts, loc, attn = make_inputs([(4, 4)], num_queries=0)
    out, grad_value, grad_depth, grad_loc, grad_attn = run(
        'kernel', (value, depth, shapes, starts, loc, attn), torch.zeros(2, 0, 8))
    assert out.shape == (2, 0, 2 * 4)
    assert grad_value.shape == value.shape and grad_value.abs().sum().item() == 0
    assert grad_depth.shape == depth.shape and grad_depth.abs().sum().item() == 0
    assert grad_loc.shape == loc.shape and grad_attn.shape == attn.shape


def test_backward_is_deterministic():
    inputs = make_inputs([(16, 16), (8, 8)], num_queries=300, num_heads=2, head_dims=8,
                         num_points=4, num_bins=16)
    first, second = run('kernel', inputs), run('kernel', inputs)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_input_errors_are_clear():
    value, depth, shapes, starts, loc, attn = make_inputs([(4, 4)])
    with pytest.raises(RuntimeError, match=r'depth_dist must be \(B, S, M, N\)'):
        multi_scale_3d_deformable_attn(value, depth[:, :-1], shapes, starts, loc, attn)
    with pytest.raises(RuntimeError, match='N >= 1 depth bins'):
        multi_scale_3d_deformable_attn(value, depth[..., :0], shapes, starts, loc, attn)
    with pytest.raises(RuntimeError, match='must share a dtype'):
        MultiScale3DDeformableAttnFunction.apply(value, depth.double(), shapes, starts, loc, attn)
    with pytest.raises(RuntimeError, match=r'sampling_locations must be \(B, Q, M, L, P, 3\)'):
        multi_scale_3d_deformable_attn(value, depth, shapes, starts, loc[..., :2], attn)
    with pytest.raises(RuntimeError, match='keys but spatial_shapes describe'):
        multi_scale_3d_deformable_attn(value[:, :-1], depth[:, :-1], shapes, starts, loc, attn)


def make_layer_inputs(num_anchors=2, num_bins=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shapes = torch.tensor([[5, 6], [3, 3]])
    query = torch.randn(2, 7, 16, generator=gen)
    value = torch.randn(2, 39, 16, generator=gen)
    depth = torch.rand(2, 39, num_bins, generator=gen).softmax(-1)
    ref = torch.rand(2, 7, num_anchors, 3, generator=gen)
    return query, value, depth, ref, shapes


def test_layer_initialisation():
    layer = MultiScale3DDeformableAttention(embed_dims=16, num_heads=4, num_levels=2, num_points=3)
    bias = layer.sampling_offsets_depth.bias.view(4, 2, 3)
    # Head 0 (angle 0): (cos + sin) / 2 = 1/2; head 2 (angle pi): -1/2; point i at i + 1 steps.
    torch.testing.assert_close(bias[0, 1], torch.tensor([0.5, 1.0, 1.5]))
    torch.testing.assert_close(bias[2, 0], torch.tensor([-0.5, -1.0, -1.5]))
    assert layer.sampling_offsets_depth.weight.abs().sum() == 0
    assert layer.attention_weights.weight.abs().sum() == 0


def test_layer_samples_around_each_anchor():
    """With zero offsets, point i of every head and level samples reference point i % Z."""
    query, value, depth, ref, shapes = make_layer_inputs(num_anchors=2)
    layer = MultiScale3DDeformableAttention(embed_dims=16, num_heads=2, num_levels=2, num_points=4)
    for linear in (layer.sampling_offsets, layer.sampling_offsets_depth):
        torch.nn.init.zeros_(linear.weight)
        torch.nn.init.zeros_(linear.bias)
    out = layer(query, value, depth, ref, shapes)
    starts = torch.tensor([0, 30])
    locations = ref[:, :, None, None, [0, 1, 0, 1]].expand(-1, -1, 2, 2, -1, -1)
    weights = torch.full((2, 7, 2, 2, 4), 1 / 8)
    expected = multi_scale_3d_deformable_attn(
        layer.value_proj(value).view(2, 39, 2, 8), depth[:, :, None].expand(-1, -1, 2, -1),
        shapes, starts, locations, weights)
    torch.testing.assert_close(out, expected)


def test_layer_kernel_matches_pytorch_and_trains():
    query, value, depth, ref, shapes = make_layer_inputs(num_anchors=4)
    torch.manual_seed(0)
    layer = MultiScale3DDeformableAttention(embed_dims=16, num_heads=2, num_levels=2, num_points=8)
    for p in layer.parameters():  # off the initial values, so that offsets and weights matter
        p.data.normal_(0, 0.1)
    outs = []
    for use_kernel in (True, False):
        layer.use_kernel = use_kernel
        layer.zero_grad()
        out = layer(query, value, depth, ref, shapes)
        out.square().sum().backward()
        outs.append((out.detach(), [p.grad.clone() for p in layer.parameters()]))
    (out, grads), (ref_out, ref_grads) = outs
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    for g, rg in zip(grads, ref_grads):
        assert g.abs().sum() > 0
        torch.testing.assert_close(g, rg, rtol=1e-4, atol=1e-5)


def test_layer_builds_from_registry():
    from perception.registry import MODELS
    layer = MODELS.build(dict(type='MultiScale3DDeformableAttention', embed_dims=16, num_heads=2,
                              num_levels=1, num_points=4))
    assert isinstance(layer, MultiScale3DDeformableAttention)
    with pytest.raises(ValueError, match='divisible by Z'):
        query, value, depth, ref, _ = make_layer_inputs(num_anchors=3)
        layer(query, value[:, :30], depth[:, :30], ref, torch.tensor([[5, 6]]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_matches_cpu():
    from perception import _ext
    if not _ext.with_cuda:
        pytest.fail('a CUDA device is present but perception._ext was built without CUDA')
    for case in CASES.values():
        inputs = make_inputs(**case)
        cpu = run('kernel', inputs)
        value, depth, shapes, starts, loc, attn = [t.cuda() for t in inputs]
        for t in (value, depth, loc, attn):
            t.requires_grad_(True)
        out = multi_scale_3d_deformable_attn(value, depth, shapes, starts, loc, attn)
        out.backward(torch.linspace(-1, 1, out.numel(), device='cuda').view_as(out))
        cuda = (out.detach(), value.grad, depth.grad, loc.grad, attn.grad)
        assert_results_close([t.cpu() for t in cuda], cpu, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_float64_gradcheck_and_errors():
    value, depth, shapes, starts, loc, attn = (t.cuda() for t in make_inputs(
        [(4, 5), (1, 1)], num_queries=3, num_bins=4, dtype=torch.float64,
        loc_range=((-0.1, 1.1), ) * 3))
    for t in (value, depth, loc, attn):
        t.requires_grad_(True)

    def fn(v, d, l, a):
        return MultiScale3DDeformableAttnFunction.apply(v, d, shapes, starts, l, a)

    assert torch.autograd.gradcheck(fn, (value, depth, loc, attn), eps=1e-6, atol=1e-5)
    with pytest.raises(RuntimeError, match='depth_dist must be on the device of value'):
        MultiScale3DDeformableAttnFunction.apply(value, depth.cpu(), shapes, starts, loc, attn)
