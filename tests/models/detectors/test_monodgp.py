"""MonoDGP: the geometry-error depth, the region head and its targets, the 2D-to-3D query hand-off, the configs and
a two-image overfit, on tiny shapes."""
import glob

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.models.layers import SELayer
from mmdet3d.structures import CameraInstance3DBoxes
from mmengine.config import Config
from mmengine.dataset import Compose

from perception.models.dense_heads import MonoDGPHead, RegionSegHead, geometry_error_depth, region_targets
from perception.models.layers import Det2DDecoderLayer, refine_reference_boxes
from perception.registry import MODELS
from perception.testing import (build_from_config, mono3d_sample, overfit_two_scenes, tiny_mono3d_detector_cfg,
                                two_scene_batch)

SYNTH_CONFIG = 'configs/monodgp/monodgp_r18_demo_synthkitti-mono3d.py'


def tiny_model_cfg(num_queries: int = 10, num_groups: int = 3, group_self_attn: bool = False) -> Config:
    return tiny_mono3d_detector_cfg(SYNTH_CONFIG, num_queries, num_groups, group_self_attn=group_self_attn)


def build_tiny_model(**kwargs):
    with pytest.warns(UserWarning, match='random initialisation'):
        return MODELS.build(tiny_model_cfg(**kwargs).model)


# ---------------------------------------------------------------- geometry-error depth


def test_geometry_error_depth_by_hand():
    focal = torch.tensor(720.)
    height_3d = torch.tensor(1.5, requires_grad=True)
    box_height = torch.tensor(30., requires_grad=True)
    error = torch.tensor(-0.5, requires_grad=True)
    depth = geometry_error_depth(height_3d, box_height, focal, error)
    # 720 * 1.5 / 30 - 0.5
    assert depth.item() == pytest.approx(35.5)
    depth.backward()
    # d/dH = f / h = 24, d/dh = -f H / h^2 = -1.2, d/ddelta = 1: neither height is detached
    assert height_3d.grad.item() == pytest.approx(24.)
    assert box_height.grad.item() == pytest.approx(-1.2)
    assert error.grad.item() == pytest.approx(1.)
    # boxes under 1 px are clamped
    assert geometry_error_depth(torch.tensor(1.5), torch.tensor(0.2), focal, torch.tensor(0.)).item() == \
        pytest.approx(1080.)


def test_head_depth_is_geometry_plus_error_without_averaging():
    head = MonoDGPHead(num_classes=3, embed_dims=8, num_pred_layers=1)
    last = head.depth_branches[0].layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.7, 0.3]))
    # h_2D = (t + b) H = (0.04 + 0.06) * 300 px = 30 px, H_3D = 1.5 m (index 1 of l, h, w), f = 720 px
    boxes = torch.tensor([[[0.5, 0.5, 0.1, 0.1, 0.04, 0.06]]], requires_grad=True)
    dims = torch.tensor([[[4.0, 1.5, 1.6]]], requires_grad=True)
    focal = torch.tensor([720.])
    out = head.predict_depth(0, torch.randn(1, 1, 8), boxes, dims, torch.full((1, 3, 5), 20.), focal, 300)
    torch.testing.assert_close(out, torch.tensor([[[36. + 0.7, 0.3]]]))
    # the depth map takes no part
    other_map = head.predict_depth(0, torch.randn(1, 1, 8), boxes, dims, torch.full((1, 3, 5), 50.), focal, 300)
    torch.testing.assert_close(other_map, out)
    out[..., 0].sum().backward()
    # d/dt = d/db = -f H / h^2 * H_img = -720 * 1.5 / 900 * 300; d/dH_3D = f / h = 24
    torch.testing.assert_close(boxes.grad, torch.tensor([[[0., 0., 0., 0., -360., -360.]]]))
    torch.testing.assert_close(dims.grad, torch.tensor([[[0., 24., 0.]]]))


# ---------------------------------------------------------------- region segmentation head


def test_region_targets_from_boxes():
    # pixels whose centre lies in a box, edges included: columns 2..5 and rows 1..3, then columns 10..12 and row 6
    boxes = torch.tensor([[2., 1., 5.5, 3.], [9.6, 6., 12., 6.2]])
    full, corners, half = region_targets([boxes, boxes[:0]], (8, 16), [(8, 16), (2, 2), (4, 8)])
    expected = torch.zeros(8, 16)
    expected[1:4, 2:6] = 1
    expected[6, 10:13] = 1
    assert full.shape == (2, 1, 8, 16)
    torch.testing.assert_close(full[0, 0], expected)
    assert full[1].sum() == 0  # an image without objects has an empty target
    # bilinear with align_corners=True: a 2 x 2 level samples the four corner pixels
    torch.testing.assert_close(corners[0, 0], expected[[0, 0, 7, 7], [0, 15, 0, 15]].view(2, 2))
    # a 4 x 8 level samples rows 0, 7/3, 14/3, 7 and columns 0, 15/7, ...: row 7/3, column 15/7 lies in the
    # first box, 1/3 of the way below row 2 towards row 3 (both inside), so it is 1
    assert half[0, 0, 1, 1] == 1 and half[0, 0, 0, 0] == 0
    assert torch.all((half >= 0) & (half <= 1))


def test_dice_loss_by_hand():
    head = RegionSegHead(embed_dims=16, num_norm_groups=4, se_reduction=4)
    prob = torch.tensor([[[[0.8, 0.2], [0.6, 0.1]]], [[[0.5, 0.5], [0.0, 1.0]]]])
    target = torch.tensor([[[[1., 0.], [1., 0.]]], [[[0., 1.], [0., 1.]]]])
    # over the whole batch, smoothed by 1: I = 0.8 + 0.6 + 0.5 + 1 = 2.9, sum P = 3.7, sum G = 4
    expected = 1 - (2 * 2.9 + 1) / (3.7 + 4 + 1)
    assert head.loss_region(prob.reshape(1, -1), target.reshape(1, -1)).item() == pytest.approx(expected)

    # the head's loss: targets from the boxes, one Dice per level, summed
    boxes = [torch.tensor([[0., 0., 0., 1.]]), torch.tensor([[1., 0., 1., 1.]])]
    losses = head.loss([prob, prob], boxes, (2, 2))
    assert losses['loss_region'].item() == pytest.approx(2 * expected)
    # a perfect prediction costs (almost) nothing
    assert head.loss([target.clamp(1e-5, 1 - 1e-5)], boxes, (2, 2))['loss_region'].item() < 1e-4


def test_region_head_attention_is_squeeze_and_excitation_with_a_sigmoid_gate():
    torch.manual_seed(0)
    head = RegionSegHead(embed_dims=16, num_norm_groups=4, se_reduction=4)
    se = head.attentions[0]
    assert isinstance(se, SELayer) and se.conv1.conv.out_channels == 4
    x = torch.randn(2, 16, 5, 7)
    # Hu et al.: x * sigmoid(W2 relu(W1 mean(x))), the official SE block
    squeezed = x.mean(dim=(2, 3), keepdim=True)
    gate = torch.sigmoid(se.conv2.conv(F.relu(se.conv1.conv(squeezed))))
    torch.testing.assert_close(se(x), x * gate)


def test_region_head_weights_the_features_and_binarises_the_segments():
    torch.manual_seed(0)
    head = RegionSegHead(embed_dims=16, num_norm_groups=4, se_reduction=4)
    # odd sizes, as ResNet rounds them up: the top-down path resizes to each level
    feats = [torch.randn(2, 16, 13, 20), torch.randn(2, 16, 7, 10), torch.randn(2, 16, 4, 5), torch.randn(2, 16, 2, 3)]
    enhanced, probs, segs = head(feats)
    for feat, out, prob, seg in zip(feats, enhanced, probs, segs):
        assert prob.shape == (2, 1) + feat.shape[-2:] and seg.shape == prob.shape
        assert torch.all((prob >= 1e-5) & (prob <= 1 - 1e-5))
        torch.testing.assert_close(out, feat * prob)
        assert torch.equal(seg, (prob > 0.5).float()) and not seg.requires_grad
    sum(p.sum() for p in probs).backward()
    assert head.lateral_convs[-1][0].weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- decoupled queries


def test_group_self_attention_keeps_groups_apart():
    torch.manual_seed(0)
    layer = Det2DDecoderLayer(
        self_attn_cfg=dict(embed_dims=16, num_heads=2, attn_drop=0., proj_drop=0.),
        cross_attn_cfg=dict(embed_dims=16, num_heads=2, num_levels=1, num_points=2, dropout=0.),
        ffn_cfg=dict(embed_dims=16, feedforward_channels=16, ffn_drop=0.)).eval()
    value = torch.randn(1, 12, 16)
    shapes, start = torch.tensor([[3, 4]]), torch.tensor([0])
    query, refs = torch.randn(1, 6, 16), torch.rand(1, 6, 1, 2)
    changed = query.clone()
    changed[:, 3:] += 1  # the second of two groups of 3
    with torch.no_grad():
        grouped = [layer(q, None, value, refs, shapes, start, num_groups=2) for q in (query, changed)]
        joint = [layer(q, None, value, refs, shapes, start, num_groups=1) for q in (query, changed)]
    torch.testing.assert_close(grouped[0][:, :3], grouped[1][:, :3])
    assert not torch.allclose(joint[0][:, :3], joint[1][:, :3])


@pytest.mark.parametrize('group_self_attn', [False, True])
def test_2d_to_3d_query_hand_off(group_self_attn):
    torch.manual_seed(0)
    model = build_tiny_model(num_queries=4, num_groups=3, group_self_attn=group_self_attn).eval()
    imgs = torch.randn(2, 3, 96, 160)
    seen = {}

    def first_3d_layer_inputs(module, args, kwargs):
        seen['query'], seen['query_pos'] = args[0], args[1]

    model.transformer.decoder.layers[0].register_forward_pre_hook(first_3d_layer_inputs, with_kwargs=True)
    with torch.no_grad():
        out = model.forward_features({'imgs': imgs}, num_groups=3)
    hidden_2d, refs_2d = out['hidden_states_2d'], out['references_2d']
    hidden_3d, refs_3d = out['hidden_states'], out['references']
    assert hidden_2d.shape == (3, 2, 12, 32) and hidden_3d.shape == (3, 2, 12, 32)
    assert [r.shape for r in refs_2d] == [(2, 12, 2), (2, 12, 6), (2, 12, 6)]
    assert [r.shape for r in refs_3d] == [(2, 12, 6)] * 3
    # the 3D decoder starts from the 2D decoder's last hidden states, without a query position, around
    # the 2D decoder's last refined boxes: those its layer-2 box branch gives, which the 2D losses supervise
    assert seen['query_pos'] is None
    torch.testing.assert_close(seen['query'], hidden_2d[-1])
    boxes_2d = model.bbox_head.forward_2d(hidden_2d, refs_2d)['boxes']
    assert boxes_2d.shape == (3, 2, 12, 6)
    torch.testing.assert_close(refs_3d[0], boxes_2d[-1])
    torch.testing.assert_close(refs_3d[0], refine_reference_boxes(refs_2d[-1], model.bbox_head.reg_branches[2](
        hidden_2d[-1])))
    assert [p.shape[-2:] for p in out['region_probs']] == [(12, 20), (6, 10), (3, 5), (2, 3)]
    assert out['depth_logits'].shape == (2, 81, 6, 10)


def test_gradients_flow_from_the_3d_losses_into_the_2d_decoder_and_reach_every_parameter():
    torch.manual_seed(0)
    model = build_tiny_model(num_queries=4, num_groups=2)
    imgs, samples = two_scene_batch()
    losses = model.loss({'imgs': imgs}, samples)
    losses['loss_depth'].backward(retain_graph=True)
    assert model.transformer.decoder_2d.layers[-1].ffn.layers[-2].weight.grad.abs().sum() > 0
    # a parameter without gradient would stall DistributedDataParallel
    sum(losses.values()).backward()
    assert [name for name, p in model.named_parameters() if p.grad is None] == []


def test_losses_and_predictions():
    torch.manual_seed(0)
    model = build_tiny_model(num_queries=6, num_groups=2)
    imgs, samples = two_scene_batch()
    losses = model({'imgs': imgs}, samples, mode='loss')
    assert {'loss_cls', 'loss_depth', 'loss_depth_map', 'loss_region', 'd0.loss_depth', 'd1.loss_angle'} <= set(losses)
    for layer in range(3):
        assert {f'd2d{layer}.loss_cls', f'd2d{layer}.loss_center', f'd2d{layer}.loss_bbox',
                f'd2d{layer}.loss_iou'} <= set(losses)
        assert f'd2d{layer}.loss_depth' not in losses  # the 2D decoder has 2D losses only
    assert all(torch.isfinite(v) for v in losses.values())

    model.eval()
    model.bbox_head.test_cfg = dict(max_per_img=5, score_thr=0., depth_score=True)
    with torch.no_grad():
        outs = model({'imgs': imgs}, samples, mode='tensor')
        results = model({'imgs': imgs}, samples, mode='predict')
    assert outs['depths'].shape == (3, 2, 6, 2) and outs['boxes'].shape == (3, 2, 6, 6)
    for result in results:
        pred = result.pred_instances_3d
        assert isinstance(pred.bboxes_3d, CameraInstance3DBoxes) and len(pred.bboxes_3d) == 5
        assert result.pred_instances.bboxes.shape == (5, 4)


@pytest.mark.slow
def test_two_image_overfit():
    """The total loss on the two scenes falls to 30 % of its first value within 300 iterations."""
    totals = overfit_two_scenes(build_tiny_model)
    assert totals[-1] <= 0.3 * totals[0], f'the loss fell from {totals[0]:.2f} to {totals[-1]:.2f} only'


# ---------------------------------------------------------------- configs


def test_every_monodgp_config_builds():
    paths = sorted(glob.glob('configs/monodgp/*.py'))
    assert paths == ['configs/monodgp/monodgp_r18_4k_synthkitti-mono3d.py',
                     'configs/monodgp/monodgp_r18_demo_synthkitti-mono3d.py',
                     'configs/monodgp/monodgp_r50_250e_kitti-mono3d.py',
                     'configs/monodgp/monodgp_r50_official_kitti.py']
    for path in paths:
        cfg, model = build_from_config(path)
        assert type(model).__name__ == 'MonoDGP' and type(model.bbox_head).__name__ == 'MonoDGPHead'
        assert model.transformer.num_queries == 50 and model.num_groups == 11
        assert model.transformer.decoder_2d.num_layers == 3 and model.transformer.decoder.num_layers == 3
        assert not model.depth_predictor.with_depth_pos_embed
        # the pipeline builds (MixUp3D reads its dataset at the first call only)
        pipeline = Compose(cfg.train_dataloader.dataset.pipeline)
        names = [type(t).__name__ for t in pipeline.transforms]
        assert names[names.index('MixUp3D') - 1] == 'RandomFlipMono3D'


def test_official_defaults_in_the_kitti_config():
    cfg = Config.fromfile('configs/monodgp/monodgp_r50_250e_kitti-mono3d.py')
    assert cfg.model.backbone.depth == 50 and cfg.input_size == (1280, 384)
    assert cfg.train_dataloader.batch_size == 8
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=2e-4, weight_decay=1e-4, fused=True)
    assert cfg.train_cfg.max_epochs == 250
    scheduler = cfg.param_scheduler[0]
    assert scheduler.milestones == [85, 125, 165, 205] and scheduler.gamma == 0.5
    head = cfg.model.bbox_head
    weights = {k: head[k].loss_weight for k in head if k.startswith('loss_')}
    assert weights == dict(loss_cls=2., loss_center=10., loss_bbox=5., loss_iou=2., loss_dim=1., loss_angle=1.,
                           loss_depth=1., loss_depth_map=1.)
    assert cfg.model.region_head.loss_region.loss_weight == 1.
    assert [c.weight for c in cfg.model.train_cfg.assigner.match_costs] == [2., 5., 2., 10.]
    mixup = next(t for t in cfg.train_pipeline if t.type == 'MixUp3D')
    assert (mixup.prob, mixup.alpha, mixup.max_objects) == (0.5, 0.5, 50)
    assert mixup.dataset.data_root == cfg.data_root and mixup.dataset.ann_file == 'kitti_infos_train.pkl'
    # otherwise MonoDETR's pipeline
    detr = Config.fromfile('configs/monodetr_kitti.py')
    assert without_mixup(cfg.train_dataloader.dataset.pipeline) == detr.train_dataloader.dataset.pipeline


def without_mixup(pipeline):
    return [t for t in pipeline if t.type != 'MixUp3D']


def test_synthetic_configs_mirror_monodetr_s():
    dgp = Config.fromfile(SYNTH_CONFIG)
    detr = Config.fromfile('configs/monodetr/monodetr_r18_demo_synthkitti-mono3d.py')
    assert dgp.input_size == detr.input_size and dgp.embed_dims == detr.embed_dims
    assert dgp.train_dataloader.dataset.data_root == detr.train_dataloader.dataset.data_root
    assert dgp.train_dataloader.batch_size == detr.train_dataloader.batch_size
    assert without_mixup(dgp.train_dataloader.dataset.pipeline) == detr.train_dataloader.dataset.pipeline
    assert dgp.val_dataloader == detr.val_dataloader
    for key in ('backbone', 'neck'):
        assert dgp.model[key] == detr.model[key]
    assert dgp.model.depth_predictor == dict(detr.model.depth_predictor, with_depth_pos_embed=False)
    assert dgp.model.transformer.encoder == detr.model.transformer.encoder
    assert dgp.model.transformer.decoder == detr.model.transformer.decoder
    layer_2d = dgp.model.transformer.decoder_2d.layer_cfg
    assert layer_2d.self_attn_cfg.embed_dims == layer_2d.cross_attn_cfg.embed_dims == dgp.embed_dims
    assert layer_2d.self_attn_cfg.attn_drop == layer_2d.self_attn_cfg.proj_drop == 0.
    assert layer_2d.cross_attn_cfg.dropout == layer_2d.ffn_cfg.ffn_drop == 0.
    assert dgp.model.region_head.embed_dims == dgp.model.bbox_head.embed_dims == dgp.embed_dims
    assert dgp.train_cfg == detr.train_cfg and dgp.param_scheduler == detr.param_scheduler
    mixup = next(t for t in dgp.train_pipeline if t.type == 'MixUp3D')
    assert mixup.dataset.data_root == dgp.data_root

    long_dgp = Config.fromfile('configs/monodgp/monodgp_r18_4k_synthkitti-mono3d.py')
    long_detr = Config.fromfile('configs/monodetr/monodetr_r18_4k_synthkitti-mono3d.py')
    assert long_dgp.train_cfg == long_detr.train_cfg and long_dgp.param_scheduler == long_detr.param_scheduler
    assert long_dgp.train_dataloader.num_workers == long_detr.train_dataloader.num_workers


def test_an_image_without_objects_trains():
    """Empty region target, no matches: every loss stays finite."""
    torch.manual_seed(0)
    model = build_tiny_model(num_queries=4, num_groups=2)
    samples = [mono3d_sample(np.zeros((0, 8)))]
    losses = model.loss({'imgs': torch.randn(1, 3, 96, 320)}, samples)
    assert all(torch.isfinite(v) for v in losses.values()), losses
