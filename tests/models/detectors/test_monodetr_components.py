"""MonoDETR's pieces against hand-computed values."""
import math

import pytest
import torch
from mmengine.structures import InstanceData
from torch import nn

from perception.models.dense_heads import MonoDETRHead, fuse_depth, geometric_depth, sample_depth_map
from perception.models.layers import (DepthAwareDecoderLayer, DepthPredictor, depth_to_lid_index,
                                      interpolate_embedding, lid_bin_centers)
from perception.models.losses import (DDNLoss, DimAwareL1Loss, LaplacianDepthLoss, MultiBinLoss,
                                      build_ddn_target, decode_heading, encode_heading)
from perception.models.task_modules import GroupHungarianAssigner, group_linear_sum_assignment

LID_WIDTH = 2 * (60 - 1e-3) / (80 * 81)  # width of the first of 80 bins over [1e-3, 60]


def test_lid_bin_centres():
    centres = lid_bin_centers(80, 1e-3, 60.)
    assert centres.shape == (81, )
    assert centres[-1] == 60.
    # bin i starts at d_min + i (i + 1) w / 2
    expected = 1e-3 + torch.tensor([0., 1., 3., 3160.], dtype=torch.float64) * LID_WIDTH
    torch.testing.assert_close(centres[[0, 1, 2, 79]].double(), expected, atol=1e-5, rtol=0)
    assert torch.all(centres[1:] > centres[:-1])


def test_lid_index_of_depths():
    depths = torch.tensor([1e-3, 1e-3 + 0.99 * LID_WIDTH, 1e-3 + 1.01 * LID_WIDTH, 30., 59.99, 60., 75., 0.,
                           float('nan')])
    index = depth_to_lid_index(depths, 80, 1e-3, 60.)
    # 30 m: continuous index -0.5 + 0.5 sqrt(1 + 8 (30 - 1e-3) / w) = 56.43
    assert index.tolist() == [0, 0, 1, 56, 79, 80, 80, 80, 80]
    centres = lid_bin_centers(80, 1e-3, 60.)
    assert torch.equal(depth_to_lid_index(centres[:80] + 1e-4, 80, 1e-3, 60.), torch.arange(80))


def test_depth_embedding_interpolation():
    table = nn.Embedding(61, 2)
    with torch.no_grad():
        table.weight.copy_(torch.stack([torch.arange(61.), torch.arange(61.) ** 2], dim=1))
    out = interpolate_embedding(torch.tensor([2.25, 0., 60., 75., -3.]), table)
    expected = torch.tensor([[2.25, 0.75 * 4 + 0.25 * 9], [0., 0.], [60., 3600.], [60., 3600.], [0., 0.]])
    torch.testing.assert_close(out, expected)

    predictor = DepthPredictor(embed_dims=32, num_heads=4, feedforward_channels=32, num_norm_groups=8)
    with torch.no_grad():
        predictor.depth_pos_embed.weight.copy_(torch.arange(61.)[:, None].expand(61, 32))
    depth = torch.tensor([[[12.5, 70.]]])
    torch.testing.assert_close(predictor.interpolate_depth_embed(depth)[0, :, 0], torch.full((32, 2), 1.)
                               * torch.tensor([12.5, 60.]))


def test_depth_fusion_by_hand():
    assert geometric_depth(torch.tensor(1.5), torch.tensor(30.), torch.tensor(720.)) == pytest.approx(36.)
    assert geometric_depth(torch.tensor(1.5), torch.tensor(0.2), torch.tensor(720.)) == pytest.approx(1080.)
    assert fuse_depth(torch.tensor(3.), torch.tensor(36.), torch.tensor(21.)) == pytest.approx(20.)

    depth_map = torch.tensor([[[10., 20.], [30., 40.]]])
    # cell centres sit at 0.25 and 0.75 of the image; the middle of the image averages the four
    samples = sample_depth_map(depth_map, torch.tensor([[[0.25, 0.25], [0.75, 0.75], [0.5, 0.5]]]))
    torch.testing.assert_close(samples, torch.tensor([[10., 40., 25.]]))

    # the head wires them: o = 0 (d_reg = 1 / (0.5 + 1e-6) - 1), H_3D = 1.5 m (index 1 of l, h, w),
    # h_2D = (t + b) H = 0.1 * 300 px, f = 720 px, constant 20 m map
    head = MonoDETRHead(num_classes=3, embed_dims=8, num_pred_layers=1)
    last = head.depth_branches[0].layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0., 0.3]))
    boxes = torch.tensor([[[0.5, 0.5, 0.1, 0.1, 0.04, 0.06]]])
    dims = torch.tensor([[[4.0, 1.5, 1.6]]])
    out = head.predict_depth(0, torch.randn(1, 1, 8), boxes, dims, torch.full((1, 3, 5), 20.),
                             torch.tensor([720.]), img_height=300)
    d_reg = 1 / (0.5 + 1e-6) - 1
    torch.testing.assert_close(out, torch.tensor([[[(d_reg + 36. + 20.) / 3, 0.3]]]))


def test_laplacian_depth_loss_by_hand():
    loss = LaplacianDepthLoss(loss_weight=1.0)
    pred, target, log_var = torch.tensor([10., 5.]), torch.tensor([12., 5.]), torch.tensor([0.5, -1.])
    # sqrt(2) e^-0.5 * 2 + 0.5 = 2.2155; sqrt(2) e^1 * 0 - 1 = -1
    torch.testing.assert_close(loss(pred, target, log_var, reduction_override='none'),
                               torch.tensor([math.sqrt(2) * math.exp(-0.5) * 2 + 0.5, -1.]))
    assert loss(pred, target, log_var, avg_factor=4.).item() == pytest.approx((2.215528 - 1.) / 4, abs=1e-5)


def test_ddn_target_paints_far_to_near():
    # near object (10 m) listed first: drawing in list order would let the far one cover it
    bboxes = torch.tensor([[3.2, 2.5, 7.0, 6.0], [1., 1., 5., 4.]])
    depths = torch.tensor([10., 30.])
    depth_map, fg_mask = build_ddn_target(bboxes, depths, (6, 8))
    expected = torch.tensor([
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 30, 30, 30, 30, 0, 0, 0],
        [0, 30, 30, 10, 10, 10, 10, 0],
        [0, 30, 30, 10, 10, 10, 10, 0],
        [0, 0, 0, 10, 10, 10, 10, 0],
        [0, 0, 0, 10, 10, 10, 10, 0],
    ], dtype=torch.float32)
    torch.testing.assert_close(depth_map, expected)
    assert torch.equal(fg_mask, expected > 0)

    loss = DDNLoss()
    target, mask = loss.get_targets([bboxes], [depths], (6, 8))
    bin_10, bin_30 = depth_to_lid_index(torch.tensor([10., 30.])).tolist()
    assert target[0, 3, 3] == bin_10 and target[0, 1, 1] == bin_30 and target[0, 0, 0] == 80
    # uniform logits: every pixel loses -0.25 (1 - 1/81)^2 log(1/81); 24 foreground pixels weigh 13,
    # 24 background pixels 1, over 48 pixels
    pixel = -0.25 * (1 - 1 / 81) ** 2 * math.log(1 / 81)
    value = loss(torch.zeros(1, 81, 6, 8), [bboxes], [depths])
    assert value.item() == pytest.approx(pixel * (13 * 24 + 24) / 48, rel=1e-5)


def test_multibin_heading_round_trip_and_loss():
    angles = torch.tensor([0., 0.2, -0.2, math.pi - 0.01, -math.pi + 0.01, 1.9])
    bins, residuals = encode_heading(angles, 12)
    assert bins.tolist() == [0, 0, 0, 6, 6, 4]
    pred = torch.cat([torch.nn.functional.one_hot(bins, 12) * 10., torch.zeros(6, 12)], dim=1)
    pred[torch.arange(6), 12 + bins] = residuals
    torch.testing.assert_close(decode_heading(pred, 12), angles, atol=1e-5, rtol=0)
    loss = MultiBinLoss(num_bins=12)
    pred = torch.zeros(1, 24)
    pred[0, 12] = 0.5  # bin 0, residual 0.5 for a true angle of 0.2: CE log(12) + |0.5 - 0.2|
    assert loss(pred, torch.tensor([0.2])).item() == pytest.approx(math.log(12) + 0.3, abs=1e-5)


def test_dimension_aware_loss():
    pred, target = torch.tensor([[4., 1.5, 1.6]], requires_grad=True), torch.tensor([[5., 1., 2.]])
    loss = DimAwareL1Loss()(pred, target, avg_factor=1.)
    # relative errors 0.2, 0.5, 0.2 rescaled to the plain L1 mean 1.9 / 3
    assert loss.item() == pytest.approx(0.9 * (1.9 / 3) / (0.9 / 3), abs=1e-5)
    loss.backward()
    assert torch.all(pred.grad != 0)


def test_group_matching_on_a_hand_made_cost():
    cost = torch.tensor([[1., 9.], [9., 1.], [5., 5.],  # group 0
                         [9., 9.], [2., 8.], [1., 3.]])  # group 1: 4 -> 0, 5 -> 1 (5) beats 5 -> 0, 4 -> 1 (9)
    rows, cols = group_linear_sum_assignment(cost, num_groups=2)
    assert rows.tolist() == [0, 1, 4, 5]
    assert cols.tolist() == [0, 1, 0, 1]
    rows, cols = group_linear_sum_assignment(cost, num_groups=1)
    assert rows.tolist() == [0, 1] and cols.tolist() == [0, 1]
    with pytest.raises(ValueError, match='groups'):
        group_linear_sum_assignment(cost, num_groups=4)


def test_assigner_matches_each_object_once_per_group():
    assigner = GroupHungarianAssigner([dict(type='InstanceL1Cost', key='centers_2d', weight=10.)])
    preds = InstanceData(centers_2d=torch.tensor([[0.1, 0.1], [0.9, 0.9], [0.5, 0.5],  # group 0
                                                  [0.85, 0.9], [0.5, 0.4], [0.12, 0.1]]))  # group 1
    gts = InstanceData(labels=torch.tensor([2, 0]), centers_2d=torch.tensor([[0.88, 0.9], [0.1, 0.12]]))
    result = assigner.assign(preds, gts, num_groups=2)
    assert result.gt_inds.tolist() == [2, 1, 0, 1, 0, 2]
    assert result.labels.tolist() == [0, 2, -1, 2, -1, 0]
    empty = assigner.assign(preds, InstanceData(labels=torch.zeros(0, dtype=torch.long),
                                                centers_2d=torch.zeros(0, 2)), num_groups=2)
    assert empty.gt_inds.tolist() == [0] * 6


def test_self_attention_stays_within_groups():
    layer = DepthAwareDecoderLayer(
        depth_cross_attn_cfg=dict(embed_dims=16, num_heads=2, attn_drop=0., proj_drop=0.),
        self_attn_cfg=dict(embed_dims=16, num_heads=2, attn_drop=0., proj_drop=0.),
        cross_attn_cfg=dict(embed_dims=16, num_heads=2, num_levels=1, num_points=2, dropout=0.),
        ffn_cfg=dict(embed_dims=16, feedforward_channels=16, num_fcs=2, ffn_drop=0.)).eval()
    spatial_shapes = torch.tensor([[4, 6]])
    value, depth_embed = torch.randn(1, 24, 16), torch.randn(1, 24, 16)
    query, query_pos, ref = torch.randn(1, 6, 16), torch.randn(1, 6, 16), torch.rand(1, 6, 1, 2)

    def run(q, groups):
        return layer(q, query_pos, value, ref, spatial_shapes, torch.tensor([0]), depth_embed, num_groups=groups)

    changed = query.clone()
    changed[:, 4] += 1.  # a query of the second group of 3
    with torch.no_grad():
        torch.testing.assert_close(run(query, 2)[:, :3], run(changed, 2)[:, :3])
        assert not torch.allclose(run(query, 1)[:, :3], run(changed, 1)[:, :3])


def test_official_qk_maps_of_the_decoder_self_attention():
    """With ``qk_proj`` the self-attention reads ``W_c q + W_p q`` of ``q = k = t + p``; with the content maps
    at the identity and the position maps at zero it is the default layer, other maps change the output."""
    cfg = dict(depth_cross_attn_cfg=dict(embed_dims=16, num_heads=2, attn_drop=0., proj_drop=0.),
               self_attn_cfg=dict(embed_dims=16, num_heads=2, attn_drop=0., proj_drop=0.),
               cross_attn_cfg=dict(embed_dims=16, num_heads=2, num_levels=1, num_points=2, dropout=0.),
               ffn_cfg=dict(embed_dims=16, feedforward_channels=16, num_fcs=2, ffn_drop=0.))
    torch.manual_seed(0)
    default, official = DepthAwareDecoderLayer(**cfg), DepthAwareDecoderLayer(**cfg, qk_proj=True)
    assert official.load_state_dict(default.state_dict(), strict=False).unexpected_keys == []
    with torch.no_grad():
        for content, pos in ((official.q_content_proj, official.q_pos_proj),
                             (official.k_content_proj, official.k_pos_proj)):
            nn.init.eye_(content.weight), nn.init.zeros_(content.bias)
            nn.init.zeros_(pos.weight), nn.init.zeros_(pos.bias)
    inputs = (torch.randn(1, 4, 16), torch.randn(1, 4, 16), torch.randn(1, 12, 16), torch.rand(1, 4, 1, 2),
              torch.tensor([[3, 4]]), torch.tensor([0]), torch.randn(1, 6, 16))
    default.eval(), official.eval()
    with torch.no_grad():
        torch.testing.assert_close(official(*inputs), default(*inputs))
        nn.init.normal_(official.k_pos_proj.weight)
        assert not torch.allclose(official(*inputs), default(*inputs), atol=1e-3)


def test_official_depth_camera_and_depth_map_corners():
    """``geo_depth_camera='original'`` reads f_u of the unadjusted camera and the original height; the default
    the input camera's f_v and the input height. ``align_corners`` puts 0 and 1 on the border cells' centres."""
    metas = [dict(cam2img=torch.diag(torch.tensor([700., 710., 1., 1.])).numpy(),
                  ori_cam2img=torch.diag(torch.tensor([690., 695., 1., 1.])).numpy(), ori_shape=(375, 1242))]
    like = torch.zeros(1)
    official = MonoDETRHead(embed_dims=8, geo_depth_camera='original')
    assert official.focal_lengths(metas, like).tolist() == [690.]
    assert official.box_height_scales(metas, like, (384, 1280)).tolist() == [375.]
    default = MonoDETRHead(embed_dims=8)
    assert default.focal_lengths(metas, like).tolist() == [710.]
    assert default.box_height_scales(metas, like, (384, 1280)).tolist() == [384.]
    with pytest.raises(ValueError, match='geo_depth_camera'):
        MonoDETRHead(embed_dims=8, geo_depth_camera='ori')

    depth_map = torch.arange(12.).view(1, 3, 4)
    corners = sample_depth_map(depth_map, torch.tensor([[[0., 0.], [1., 1.]]]), align_corners=True)
    assert corners.tolist() == [[0., 11.]]
