"""DFA3D's spatial cross-attention: pillar points, their projection and camera mask, the averaging over the
cameras, DFA3D against 2D sampling under a one-hot depth, and the grouped depth head with its LiDAR targets."""
import math

import pytest
import torch
import torch.nn.functional as F

from perception.models.dense_heads.open_object_head import lidar_depth_maps
from perception.models.layers.dfa3d_spatial_cross_attention import (DFA3DDepthHead, PillarDeformableAttention,
                                                                    SpatialCrossAttention, depth_bin_index,
                                                                    one_hot_depth, pillar_points, project_pillars)
from perception.ops import MultiScale3DDeformableAttention

# A camera looking along +x of the LiDAR: x_cam = -y, y_cam = -z, z_cam = x; fx = fy = 100, (cx, cy) = (50, 25)
# on a 100 x 50 image.
LIDAR2IMG = torch.tensor([[50., -100., 0., 0.], [25., 0., -100., 0.], [1., 0., 0., 0.], [0., 0., 0., 1.]])


def test_pillar_points_by_hand():
    points = pillar_points(2, 3, (-3., -2., -1., 3., 2., 3.), num_points_in_pillar=2)
    assert points.shape == (6, 2, 3)
    # query r * 3 + c: x = -3 + (c + 0.5) * 2, y = -2 + (r + 0.5) * 2, z at the centres of [-1, 1] and [1, 3]
    assert torch.allclose(points[5], torch.tensor([[2., 1., 0.], [2., 1., 2.]]))
    assert torch.allclose(points[1, :, :2], torch.tensor([[0., -1.], [0., -1.]]))


def test_project_pillars_by_hand():
    points = torch.tensor([[[10., 1., 0.5], [-10., 1., 0.5]], [[10., 8., 0.], [58., 0., 0.]]])
    uvd, mask = project_pillars(points, LIDAR2IMG.expand(1, 1, 4, 4), (50, 100), depth_range=(2., 58.))
    # (10, 1, 0.5): u = 100 * -1 / 10 + 50 = 40, v = 100 * -0.5 / 10 + 25 = 20, depth 10
    assert torch.allclose(uvd[0, 0, 0, 0], torch.tensor([0.4, 0.4, 8 / 56]))
    assert torch.allclose(uvd[0, 0, 1, 1], torch.tensor([0.5, 0.5, 1.0]))
    # behind the camera; u = -80 + 50 < 0 (left of the image); both inside
    assert mask.tolist() == [[[[True, False], [False, True]]]]


def _sca_inputs(views=1, queries=3):
    torch.manual_seed(0)
    spatial_shapes = torch.tensor([[4, 6]])
    value = torch.randn(1, views, 24, 16)
    depth = torch.rand(1, views, 24, 8).softmax(-1)
    reference = torch.rand(1, views, queries, 2, 3) * 0.8 + 0.1
    mask = torch.ones(1, views, queries, 2, dtype=torch.bool)
    return torch.randn(1, queries, 16), value, reference, mask, spatial_shapes, depth


@pytest.mark.parametrize('use_dfa3d', [True, False])
def test_sca_averages_over_the_cameras_that_see_a_query(use_dfa3d):
    query, value, reference, mask, shapes, depth = _sca_inputs()
    sca = SpatialCrossAttention(16, num_heads=2, num_levels=1, num_points=4, use_dfa3d=use_dfa3d, dropout=0.)
    torch.nn.init.normal_(sca.output_proj.bias)
    start = shapes.new_zeros(1)
    one = sca(query, value, reference, mask, shapes, start, depth)
    assert one.shape == (1, 3, 16)
    # the same camera twice: the average over the 2 hitting cameras is the 1-camera output (a sum would double it)
    two = sca(query, value.repeat(1, 2, 1, 1), reference.repeat(1, 2, 1, 1, 1), mask.repeat(1, 2, 1, 1), shapes,
              start, depth.repeat(1, 2, 1, 1))
    assert torch.allclose(one, two, atol=1e-5)
    # a second camera that does not see query 1 (nor any query) changes nothing either
    blind = torch.cat([mask, torch.zeros_like(mask)], 1)
    assert torch.allclose(one, sca(query, value.repeat(1, 2, 1, 1), reference.repeat(1, 2, 1, 1, 1), blind, shapes,
                                   start, depth.repeat(1, 2, 1, 1)), atol=1e-5)
    # a query no camera sees gets nothing sampled: input + output_proj(0) = input + bias
    mask[0, 0, 1] = False
    out = sca(query, value, reference, mask, shapes, start, depth)
    assert torch.allclose(out[0, 1], query[0, 1] + sca.output_proj.bias, atol=1e-6)
    assert not torch.allclose(out[0, 0], query[0, 0] + sca.output_proj.bias, atol=1e-3)


@pytest.mark.parametrize('shift, factor', [(0.0, 1.0), (0.5, 0.5), (3.0, 0.0)])
def test_dfa3d_with_a_one_hot_depth_is_2d_sampling_weighted_by_it(shift, factor):
    """Every pixel's distribution is one-hot at bin 5 of 8: points sampled at the centre of bin 5 see the 2D
    features unchanged, half a bin off half of them, three bins off nothing."""
    torch.manual_seed(0)
    num_bins = 8
    dfa3d = MultiScale3DDeformableAttention(16, num_heads=2, num_levels=1, num_points=4)
    plain = PillarDeformableAttention(16, num_heads=2, num_levels=1, num_points=4)
    torch.nn.init.normal_(dfa3d.attention_weights.weight)
    torch.nn.init.normal_(dfa3d.sampling_offsets.weight, std=0.1)
    plain.load_state_dict({k: v for k, v in dfa3d.state_dict().items() if k in plain.state_dict()})
    torch.nn.init.zeros_(dfa3d.sampling_offsets_depth.bias)
    query, value = torch.randn(1, 5, 16), torch.randn(1, 20, 16)
    shapes = torch.tensor([[4, 5]])
    uv = torch.rand(1, 5, 2, 2) * 0.6 + 0.2
    d = torch.full((1, 5, 2, 1), (5.5 + shift) / num_bins)
    depth = F.one_hot(torch.full((1, 20), 5), num_bins).float()
    out_3d = dfa3d(query, value, depth, torch.cat([uv, d], -1), shapes)
    out_2d = plain(query, value, uv, shapes, shapes.new_zeros(1))
    assert out_2d.abs().max() > 0.1
    assert torch.allclose(out_3d, factor * out_2d, atol=1e-5)


def test_depth_bins_and_one_hot():
    depth = torch.tensor([[[0.0, 1.9, 2.0, 2.49], [2.5, 57.99, 58.0, 10.26]]])
    assert depth_bin_index(depth).tolist() == [[[-1, -1, 0, 0], [1, 111, -1, 16]]]
    one_hot = one_hot_depth(depth)
    assert one_hot.shape == (1, 112, 2, 4)
    assert one_hot.sum(1).tolist() == [[[0., 0., 1., 1.], [1., 1., 0., 1.]]]
    assert one_hot[0, 16, 1, 3] == 1


def test_lidar_depth_per_32x32_patch_and_the_grouped_codes():
    """Points of a 64 x 128 image binned into its 2 x 4 patches of 32 x 32 pixels: the nearest depth of each patch,
    its code (2-bin codes to 10 m, 4-bin codes to 26 m, 8-bin codes to 58 m) and the BCE loss on them."""
    lidar2img = torch.eye(4)[None]  # points given as (u * d, v * d, d)
    pixels_depths = [(10, 10, 20.0), (20, 5, 9.0), (100, 40, 30.0), (127, 63, 4.0), (40, 50, 70.0), (50, 10, -1.0)]
    points = torch.tensor([[u * d, v * d, d] for u, v, d in pixels_depths])
    cells = lidar_depth_maps(points, lidar2img, (64, 128), (2, 4))
    # (20, 5) is nearer than (10, 10) in the top-left patch; (127, 63) nearer than (100, 40) bottom right; the point
    # behind the camera is dropped
    assert cells.tolist() == [[[9.0, 0.0, 0.0, 0.0], [0.0, 70.0, 0.0, 4.0]]]

    head = DFA3DDepthHead(in_channels=8, mid_channels=8)
    assert head.num_bins == 112 and head.num_codes == 24
    assert [int(head.code_of_bin[b]) for b in (0, 1, 2, 15, 16, 19, 20, 47, 48, 55, 111)] == \
        [0, 0, 1, 7, 8, 8, 9, 15, 16, 16, 23]
    # 2 maps: the ASPP's pooled BN needs more than one value in training; mmcv's DCN needs 3 rows
    probs = head(torch.randn(2, 8, 3, 4))
    assert probs.shape == (2, 24, 3, 4) and torch.allclose(probs.sum(1), torch.ones(2, 3, 4))
    bins = head.decode(probs)
    assert bins.shape == (2, 112, 3, 4)
    assert torch.equal(bins[:, 14], probs[:, 7]) and torch.equal(bins[:, 111], probs[:, 23])  # copied, not divided

    # 9 m is bin 14, code 7; 4 m is bin 4, code 2; 70 m has no bin. Uniform probabilities: per valid cell
    # -log(1/24) - 23 log(23/24), averaged over the 2 valid cells, times 0.5.
    uniform = torch.full((1, 24, 2, 4), 1 / 24)
    expected = 0.5 * (math.log(24) + 23 * math.log(24 / 23))
    assert head.loss(uniform, cells).item() == pytest.approx(expected, rel=1e-5)
    peaked = uniform.clone()
    peaked[0, :, 0, 0] = F.one_hot(torch.tensor(7), 24) * 0.9 + 0.1 / 24
    peaked[0, :, 1, 3] = F.one_hot(torch.tensor(2), 24) * 0.9 + 0.1 / 24
    assert head.loss(peaked, cells) < 0.5 * head.loss(uniform, cells)
