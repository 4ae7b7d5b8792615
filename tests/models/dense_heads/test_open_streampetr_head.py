"""The StreamPETR head of OPEN: the memory queue across two frames (the propagated queries arrive moved by the ego
motion, aged by the time step), its reset at the start of a run, and the denoising mask."""
import math

import numpy as np
import torch
from mmdet3d.structures import LiDARInstance3DBoxes
from mmengine.structures import InstanceData

from perception.models.dense_heads import StreamPETRHead
from perception.models.layers import normalize_points

PC_RANGE = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)


def tiny_head(**kwargs):
    cfg = dict(num_classes=3, in_channels=16, embed_dims=16, num_query=12, memory_len=10, topk_proposals=4,
               num_propagated=3, scalar=2, pc_range=PC_RANGE,
               position_embedding=dict(type='FrustumPositionEmbedding', num_depths=4),
               decoder=dict(num_layers=2, num_heads=2, feedforward_channels=32, dropout=0.0),
               bbox_coder=dict(type='NMSFreeBBoxCoder', max_num=5))
    cfg.update(kwargs)
    return StreamPETRHead(**cfg)


def pose(yaw, tx, ty):
    matrix = np.eye(4)
    matrix[:2, :2] = [[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]]
    matrix[:3, 3] = [tx, ty, 0.5]
    return torch.tensor(matrix)[None]


def frame(head, lidar2global, timestamp, prev_exists, gt=None):
    torch.manual_seed(0)
    lidar2img = torch.tensor([[[100., 0, 32, 0], [0, 100, 16, 0], [0, 0, 1, 0], [0, 0, 0, 1]]]) @ torch.tensor(
        [[0., -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    return head(torch.randn(1, 2, 16, 2, 4), lidar2img.expand(1, 2, 4, 4), (32, 64), lidar2global,
                torch.tensor([timestamp], dtype=torch.float64), torch.tensor([prev_exists]), gt_instances=gt)


def test_memory_queue_carries_the_ego_motion_into_the_propagated_queries():
    head = tiny_head().eval()
    # MLN starts as the identity (official init): give it a trained-like condition dependence
    torch.nn.init.normal_(head.ego_pose_pe.gamma.weight, std=0.1)
    pose1, pose2 = pose(0.3, 1000.0, 2000.0), pose(0.3 + math.pi / 6, 1003.0, 2001.0)
    with torch.no_grad():
        out1 = frame(head, pose1, 100.0, False)
        # the 4 best queries of frame 1 are at the front of the memory, in frame 1's LiDAR frame, age 0
        scores = out1['all_cls_scores'][-1, 0].sigmoid().amax(-1)
        best = scores.topk(4).indices
        centres1 = out1['all_bbox_preds'][-1, 0, best, :3]
        np.testing.assert_allclose(head.memory['reference'][0, :4].numpy(), centres1.numpy(), atol=1e-6)
        np.testing.assert_allclose(head.memory['velocity'][0, :4].numpy(),
                                   out1['all_bbox_preds'][-1, 0, best, 8:10].numpy(), atol=1e-6)
        assert head.memory['age'][0, :4].abs().max() == 0

        head.pre_update_memory(pose2, torch.tensor([100.5], dtype=torch.float64), torch.tensor([True]))
        motion = (torch.linalg.inv(pose2[0]) @ pose1[0]).float()
        moved = centres1 @ motion[:3, :3].T + motion[:3, 3]
        np.testing.assert_allclose(head.memory['reference'][0, :4].numpy(), moved.numpy(), atol=1e-4)
        np.testing.assert_allclose(head.memory['age'][0, :4, 0].numpy(), 0.5)
        np.testing.assert_allclose(head.memory['egopose'][0, 0].numpy(), motion.numpy(), atol=1e-6)

        # the first num_propagated entries join the queries at their moved positions
        reference = head.reference_points.weight[None]
        query_pos = head.query_embedding(torch.zeros(1, 12, 24))
        tgt, pos, ref, temp_memory, temp_pos = head.temporal_alignment(query_pos, torch.zeros_like(query_pos),
                                                                       reference)
        assert tgt.shape == (1, 15, 16) and ref.shape == (1, 15, 3) and temp_memory.shape == (1, 7, 16)
        np.testing.assert_allclose(ref[0, 12:].numpy(), normalize_points(moved[:3], PC_RANGE).numpy(), atol=1e-5)
        # the ego motion conditions the propagated queries' positions (MLN): another motion, other positions
        head.memory['egopose'][0, :3] = torch.eye(4)
        _, pos_identity, _, _, _ = head.temporal_alignment(query_pos, torch.zeros_like(query_pos), reference)
        assert not torch.allclose(pos[0, 12:], pos_identity[0, 12:])
        assert torch.allclose(pos[0, :12], pos_identity[0, :12])


def test_memory_is_cleared_where_a_run_starts():
    head = tiny_head().eval()
    with torch.no_grad():
        frame(head, pose(0.0, 0.0, 0.0), 0.0, False)
        assert head.memory['embedding'].abs().sum() > 0
        head.pre_update_memory(pose(0.1, 1.0, 0.0), torch.tensor([0.5], dtype=torch.float64), torch.tensor([False]))
    # everything forgotten; the 3 propagated slots hold the fixed pseudo points, at rest
    for key in ('embedding', 'age', 'velocity'):
        assert head.memory[key].abs().max() == 0
    limits = torch.tensor(PC_RANGE)
    pseudo = head.pseudo_reference_points.weight * (limits[3:] - limits[:3]) + limits[:3]
    np.testing.assert_allclose(head.memory['reference'][0, :3].numpy(), pseudo.numpy(), atol=1e-5)
    assert head.memory['reference'][0, 3:].abs().max() == 0
    assert torch.equal(head.memory['egopose'][0, :3], torch.eye(4).expand(3, 4, 4))
    assert head.memory['egopose'][0, 3:].abs().max() == 0
    assert not head.pseudo_reference_points.weight.requires_grad


def test_denoising_groups_and_losses():
    head = tiny_head().train()
    boxes = LiDARInstance3DBoxes(torch.tensor([[5., 3., -1., 4., 2., 1.5, 0.2, 1., 0.], [-8., 2., -1., 1., 1., 2.,
                                                                                         0., 0., 0.]]), box_dim=9)
    gt = [InstanceData(bboxes_3d=boxes, labels_3d=torch.tensor([0, 2]))]
    reference, mask, meta = head.prepare_for_dn(1, head.reference_points.weight, gt)
    # 2 groups of 2 noised boxes before the 12 + 3 queries
    assert reference.shape == (1, 4 + 12, 3) and meta['pad'] == 4
    assert mask.shape == (4 + 15, 4 + 15 + 10 - 3)
    assert mask[4:, :4].all() and not mask[4:, 4:].any()
    assert mask[0, 2:4].all() and not mask[0, :2].any() and mask[2, :2].all()
    # the noised queries see the memory keys (as the official mask)
    assert not mask[:4, 19:].any()
    out = frame(head, pose(0.0, 0.0, 0.0), 0.0, False, gt)
    assert out['all_cls_scores'].shape == (2, 1, 15, 3) and out['dn_cls_scores'].shape == (2, 1, 4, 3)
    losses = head.loss(out, gt)
    assert set(losses) == {'d0.loss_cls', 'd0.loss_bbox', 'd0.dn_loss_cls', 'd0.dn_loss_bbox', 'loss_cls',
                           'loss_bbox', 'dn_loss_cls', 'dn_loss_bbox'}
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['loss_cls'] > 0 and losses['loss_bbox'] > 0 and losses['dn_loss_cls'] > 0
