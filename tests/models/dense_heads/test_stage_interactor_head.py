import math

import torch

from perception.models.layers.adamixer import (AdaptiveMixing, SubqueryPointSampler, sample_3d, scale_level_weights,
                                               xyxy_to_xyzr, xyzr_to_xyxy)
from perception.models.layers.cross_stage_filter import reused_filter_counts
from perception.models.task_modules.cross_stage_assigner import candidate_stages, cross_stage_labels


def test_scale_level_weights_on_hand_values():
    # z = 3: logits -(0, 1, 4, 9) / 2 over the levels of stride 4, 8, 16, 32.
    e = [1.0, math.exp(-0.5), math.exp(-2.0), math.exp(-4.5)]
    expected = torch.tensor([v / sum(e) for v in e])
    torch.testing.assert_close(scale_level_weights(torch.tensor(3.0)), expected)
    torch.testing.assert_close(expected, torch.tensor([0.570459, 0.346001, 0.077203, 0.006337]), atol=1e-6,
                               rtol=0)
    # z = 4.5 lies half-way between levels 1 and 2; z = 6 reads mostly from the coarsest level.
    w = scale_level_weights(torch.tensor([4.5, 6.0]))
    torch.testing.assert_close(w[0, 1], w[0, 2])
    torch.testing.assert_close(w[0, 0], w[0, 3])
    assert w[1].argmax() == 3
    torch.testing.assert_close(w.sum(-1), torch.ones(2))


def test_sample_3d_weights_levels_and_interpolates():
    strides = (4, 8, 16, 32)
    # 64x64 image. Channel group 0 holds the level id + 1, group 1 the x position (in pixels) of the
    # feature-map cell centres, so bilinear sampling returns x itself inside the map.
    feats = []
    for level, s in enumerate(strides):
        size = 64 // s
        xs = (torch.arange(size, dtype=torch.float32) + 0.5) * s
        feats.append(torch.stack([torch.full((size, size), level + 1.0), xs.expand(size, size)])[None])
    z = torch.tensor([3.0, 4.5])
    points = torch.tensor([[20.0, 30.0], [33.0, 33.0]])
    pts = torch.cat([points, z[:, None]], dim=-1).view(1, 1, 1, 2, 3).expand(1, 1, 2, 2, 3)
    out = sample_3d(feats, strides, pts.contiguous(), num_groups=2)  # 1, 1, G=2, P=2, C/G=1
    w = scale_level_weights(z)
    torch.testing.assert_close(out[0, 0, 0, :, 0], (w * torch.tensor([1., 2., 3., 4.])).sum(-1))
    # Between cell centres of every level, bilinear sampling of the x ramp returns x exactly.
    torch.testing.assert_close(out[0, 0, 1, :, 0], points[:, 0])


def test_subquery_points_on_hand_values():
    sampler = SubqueryPointSampler(dim=4, num_groups=1, in_points=1, subbox_points=2)
    with torch.no_grad():
        sampler.subquery_offset.bias.copy_(torch.tensor([0.5, -0.25, 1.0]))  # dx0, dy0, dz0
        sampler.subbox_offset.bias.copy_(torch.tensor([0.1, 0.2, 0.0, -0.1, 0.0, -1.0]))
    # Box 40 wide and 10 high centred at (100, 50): z = log2(20), r = log2(1/4).
    xyzr = xyxy_to_xyzr(torch.tensor([[[80.0, 45.0, 120.0, 55.0]]]))
    pts = sampler(torch.zeros(1, 1, 4), xyzr)[0, 0, 0]
    # x = 100 + 40 (0.5 + 2 dx1), y = 50 + 10 (-0.25 + 2 dy1), z = log2(20) + 1 + dz1.
    expected = torch.tensor([[100 + 40 * (0.5 + 0.2), 50 + 10 * (-0.25 + 0.4), math.log2(20) + 1],
                             [100 + 40 * (0.5 - 0.2), 50 + 10 * (-0.25 + 0.0), math.log2(20)]])
    torch.testing.assert_close(pts, expected)
    torch.testing.assert_close(xyzr_to_xyxy(xyzr), torch.tensor([[[80.0, 45.0, 120.0, 55.0]]]))


def test_channel_filters_are_reused_from_the_third_stage():
    assert reused_filter_counts(6, 2) == [0, 0, 1, 2, 3, 4]
    mixing = AdaptiveMixing(dim=8, num_groups=2, in_points=3, out_points=5, num_reused=2)
    plain = AdaptiveMixing(dim=8, num_groups=2, in_points=3, out_points=5)
    plain.load_state_dict({k: v for k, v in mixing.state_dict().items() if 'adapters' not in k})
    feats, query = torch.randn(2, 4, 2, 3, 4), torch.randn(2, 4, 8)
    prev = [torch.randn(2, 4, 2, 4, 4) for _ in range(3)]
    out, channel_filter = mixing(feats, query, prev)
    assert out.shape == (2, 4, 8) and channel_filter.shape == (2, 4, 2, 4, 4)
    # Zero-initialised adapters: at the start the reused filters change nothing.
    torch.testing.assert_close(out, plain(feats, query)[0])
    with torch.no_grad():
        mixing.adapters[0].bias.fill_(0.3)
    assert not torch.allclose(mixing(feats, query, prev)[0], out)


def test_candidate_stages():
    assert candidate_stages(0, 6) == [0, 1, 2, 3, 4, 5]
    assert candidate_stages(3, 6) == [2, 3, 4, 5]
    assert candidate_stages(5, 6) == [4, 5]


def test_cross_stage_label_reassignment_on_hand_made_assignments():
    gt_bboxes = torch.tensor([[0., 0., 10., 10.], [20., 20., 40., 40.]])
    gt_labels = torch.tensor([2, 0])
    # Current-stage boxes of 4 queries: q0 on gt0, q1 on gt1, q2 half on gt0 (IoU 0.5), q3 nowhere.
    boxes = torch.tensor([[0., 0., 10., 10.], [21., 21., 40., 40.], [0., 0., 10., 5.], [50., 50., 60., 60.]])
    # Hungarian results per stage (0 = background, i + 1 = gt i).
    stage_gt_inds = [
        torch.tensor([0, 2, 1, 0]),  # stage 0: q2 -> gt0, q1 -> gt1
        torch.tensor([1, 2, 0, 0]),  # stage 1: q0 -> gt0, q1 -> gt1 (the current stage below)
        torch.tensor([0, 0, 0, 1]),  # stage 2: q3 -> gt0, but q3's box misses it
        torch.tensor([2, 0, 0, 0]),  # stage 3: q0 -> gt1, but q0's box misses it
    ]
    targets = cross_stage_labels(1, boxes, gt_bboxes, gt_labels, stage_gt_inds, num_classes=3)
    expected = torch.zeros(4, 3)
    expected[0, 2] = 1  # own match
    expected[1, 0] = 1  # own match, also found in stage 0
    expected[2, 2] = 1  # from the previous stage, IoU 0.5 >= 0.5
    torch.testing.assert_close(targets, expected)

    # Stage 0 has no previous stage: q2's match exists only there, so it stays; the own match of q1 at
    # stage 0 needs its box to reach the IoU too.
    far = boxes.clone()
    far[1] = torch.tensor([30., 30., 50., 50.])  # IoU with gt1 = 100 / 700 < 0.5
    targets = cross_stage_labels(0, far, gt_bboxes, gt_labels, stage_gt_inds, num_classes=3)
    expected = torch.zeros(4, 3)
    expected[0, 2] = 1  # from stage 1
    expected[2, 2] = 1  # own match
    torch.testing.assert_close(targets, expected)
    # The last stage reads only the previous one and itself.
    targets = cross_stage_labels(3, boxes, gt_bboxes, gt_labels, stage_gt_inds, num_classes=3)
    assert targets.sum() == 0
    assert cross_stage_labels(2, boxes, gt_bboxes[:0], gt_labels[:0], stage_gt_inds, 3).sum() == 0
