"""The whole MonoDETR: configs, output shapes, decoding and a two-image overfit, on tiny shapes."""
import glob
import time

import numpy as np
import pytest
import torch
from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope

from perception.models.losses import encode_heading
from perception.registry import MODELS
from perception.testing import mono3d_sample

SYNTH_CONFIG = 'configs/monodetr/monodetr_r18_1e_synthkitti-mono3d.py'
# KITTI's P2 scaled to a 320 px wide input
CAM2IMG = np.array([[180., 0., 160., 0.], [0., 180., 48., 0.], [0., 0., 1., 0.], [0., 0., 0., 1.]])


def tiny_model_cfg(num_queries: int = 10, num_groups: int = 3) -> Config:
    """The synthetic-world config shrunk for unit tests: 16-channel ResNet-18, 32-d transformer with one
    encoder layer, ``num_queries`` x ``num_groups`` queries, no dropout."""
    cfg = Config.fromfile(SYNTH_CONFIG)
    init_default_scope(cfg.default_scope)
    dims = 32
    attn = dict(embed_dims=dims, num_heads=4, attn_drop=0., proj_drop=0.)
    msda = dict(embed_dims=dims, num_heads=4, num_levels=4, num_points=2, dropout=0.)
    ffn = dict(embed_dims=dims, feedforward_channels=dims, num_fcs=2, ffn_drop=0.,
               act_cfg=dict(type='ReLU', inplace=True))
    cfg.merge_from_dict(dict(model=dict(
        backbone=dict(base_channels=16),
        neck=dict(in_channels=[32, 64, 128], out_channels=dims, norm_cfg=dict(type='GN', num_groups=8)),
        positional_encoding=dict(num_feats=dims // 2),
        depth_predictor=dict(embed_dims=dims, num_heads=4, feedforward_channels=dims, dropout=0.,
                             num_norm_groups=8),
        transformer=dict(
            num_queries=num_queries, num_groups=num_groups,
            encoder=dict(num_layers=1, layer_cfg=dict(self_attn_cfg=msda, ffn_cfg=ffn)),
            decoder=dict(layer_cfg=dict(depth_cross_attn_cfg=attn, self_attn_cfg=attn, cross_attn_cfg=msda,
                                        ffn_cfg=ffn))),
        bbox_head=dict(embed_dims=dims))))
    return cfg


def build_tiny_model(**kwargs):
    with pytest.warns(UserWarning, match='random initialisation'):
        return MODELS.build(tiny_model_cfg(**kwargs).model)


def make_sample(objects, img_size=(96, 320), cam2img=CAM2IMG) -> Det3DDataSample:
    """A data sample with camera boxes ``objects`` (x, y, z bottom centre, l, h, w, ry, label)."""
    return mono3d_sample(objects, img_size, cam2img)


def draw(sample: Det3DDataSample, img_size=(96, 320)) -> torch.Tensor:
    """A learnable picture of the sample: each object a flat patch of its class colour over its 2D box."""
    image = torch.full((3, ) + tuple(img_size), -1.)
    colours = torch.tensor([[1., 0., 0.], [0., 1., 0.], [0., 0., 1.]])
    for box, label in zip(sample.gt_instances.bboxes.round().long(), sample.gt_instances.labels):
        x1, y1, x2, y2 = box.tolist()
        image[:, max(y1, 0):y2, max(x1, 0):x2] = colours[label][:, None, None]
    return image


SCENES = [
    [[-2., 1.6, 12., 3.9, 1.5, 1.6, 0.3, 2], [3., 1.6, 20., 0.8, 1.7, 0.6, -1.2, 0]],
    [[1., 1.6, 9., 3.7, 1.5, 1.6, 1.4, 2], [-4., 1.6, 25., 1.8, 1.7, 0.6, 2.5, 1]],
]


def test_every_monodetr_config_builds():
    paths = sorted(glob.glob('configs/monodetr/*.py'))
    assert 'configs/monodetr/monodetr_r50_195e_kitti-mono3d.py' in paths and SYNTH_CONFIG in paths
    for path in paths:
        cfg = Config.fromfile(path)
        init_default_scope(cfg.default_scope)
        with pytest.warns(UserWarning, match='random initialisation'):
            model = MODELS.build(cfg.model)
        assert model.transformer.num_queries == 50 and model.num_groups == 11
        assert model.depth_predictor.bin_centers.shape == (81, )


def test_official_defaults_in_the_kitti_config():
    cfg = Config.fromfile('configs/monodetr_kitti.py')
    assert cfg.model.backbone.depth == 50 and cfg.input_size == (1280, 384)
    assert cfg.train_dataloader.batch_size == 16
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=2e-4, weight_decay=1e-4)
    assert cfg.train_cfg.max_epochs == 195 and cfg.param_scheduler[0].milestones == [125, 165]
    head = cfg.model.bbox_head
    weights = {k: head[k].loss_weight for k in head if k.startswith('loss_')}
    assert weights == dict(loss_cls=2., loss_center=10., loss_bbox=5., loss_iou=2., loss_dim=1., loss_angle=1.,
                           loss_depth=1., loss_depth_map=1.)
    assert (head.loss_depth_map.fg_weight, head.loss_depth_map.bg_weight) == (13., 1.)
    costs = [c.weight for c in cfg.model.train_cfg.assigner.match_costs]
    assert costs == [2., 5., 2., 10.]
    assert cfg.model.test_cfg.max_per_img == 50 and cfg.model.test_cfg.score_thr == 0.2


def test_missing_backbone_checkpoint_is_an_error():
    cfg = tiny_model_cfg()
    cfg.model.backbone_checkpoint = '/nonexistent/resnet18.pth'
    with pytest.raises(FileNotFoundError, match='nonexistent'):
        MODELS.build(cfg.model)


def test_backbone_weights_load_from_a_local_checkpoint(tmp_path, recwarn):
    cfg = tiny_model_cfg()
    source = MODELS.build(cfg.model.backbone)
    # a torchvision-style file: the backbone's names plus the classifier, which is ignored
    weights = dict(source.state_dict(), **{'fc.weight': torch.zeros(10, 128), 'fc.bias': torch.zeros(10)})
    torch.save(weights, tmp_path / 'resnet.pth')
    cfg.model.backbone_checkpoint = str(tmp_path / 'resnet.pth')
    recwarn.clear()
    model = MODELS.build(cfg.model)
    assert not [w for w in recwarn if 'random initialisation' in str(w.message)]
    assert not torch.equal(model.backbone.conv1.weight, source.conv1.weight)
    model.init_weights()
    for name, value in source.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[name], value), name


@pytest.mark.parametrize('img_size', [(96, 320), (100, 180)])
def test_output_shapes_for_any_input_size(img_size):
    torch.manual_seed(0)
    model = build_tiny_model(num_queries=10, num_groups=3).eval()
    samples = [make_sample(SCENES[0], img_size), make_sample(SCENES[1], img_size)]
    imgs = torch.randn((2, 3) + img_size)
    map_size = tuple(-(-s // 16) for s in img_size)
    with torch.no_grad():
        head_inputs = model.forward_features({'imgs': imgs}, 3)
        assert head_inputs['hidden_states'].shape == (3, 2, 30, 32)
        assert [r.shape[-1] for r in head_inputs['references']] == [2, 6, 6]
        assert head_inputs['depth_logits'].shape == (2, 81) + map_size
        assert head_inputs['weighted_depth'].shape == (2, ) + map_size and head_inputs['img_size'] == img_size
        outs = model({'imgs': imgs}, samples, mode='tensor')
        assert outs['cls_scores'].shape == (3, 2, 10, 3) and outs['boxes'].shape == (3, 2, 10, 6)
        assert outs['dims'].shape == (3, 2, 10, 3) and outs['angles'].shape == (3, 2, 10, 24)
        assert outs['depths'].shape == (3, 2, 10, 2)
        model.bbox_head.test_cfg = dict(max_per_img=8, score_thr=0., depth_score=True)
        results = model({'imgs': imgs}, samples, mode='predict')
    for result in results:
        pred = result.pred_instances_3d
        assert isinstance(pred.bboxes_3d, CameraInstance3DBoxes) and len(pred.bboxes_3d) == 8
        assert pred.scores_3d.shape == (8, ) and pred.labels_3d.shape == (8, )
        assert result.pred_instances.bboxes.shape == (8, 4)
    model.train()
    losses = model({'imgs': imgs}, samples, mode='loss')
    assert {'loss_cls', 'loss_depth', 'loss_depth_map', 'd0.loss_cls', 'd1.loss_angle'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())


def test_decoding_recovers_boxes_from_perfect_outputs():
    """Feed the decoder the raw outputs that describe known boxes: the boxes must come back."""
    model = build_tiny_model(num_queries=2, num_groups=1)
    head = model.bbox_head
    sample = make_sample(SCENES[0])
    gt = head.bbox_coder.encode(sample.gt_instances_3d, sample.gt_instances, (96, 320))
    true_bins, residuals = encode_heading(gt.alphas, 12)
    angles = torch.zeros(2, 24)
    angles[torch.arange(2), true_bins] = 10.
    angles[torch.arange(2), 12 + true_bins] = residuals
    logits = torch.full((2, 3), -10.)
    logits[torch.arange(2), gt.labels] = 10.
    outputs = dict(cls_scores=logits[None], boxes=torch.cat([gt.centers_2d, gt.lrtb], 1)[None],
                   dims=gt.dims[None], angles=angles[None],
                   depths=torch.stack([gt.depths, torch.zeros(2)], 1)[None])
    (result, ), (result_2d, ) = head.predict_by_feat(outputs, [sample.metainfo], (96, 320))
    order = result.labels_3d.argsort(descending=True)
    torch.testing.assert_close(result.bboxes_3d.tensor[order], sample.gt_instances_3d.bboxes_3d.tensor,
                               atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(result_2d.bboxes[order], sample.gt_instances.bboxes, atol=1e-3, rtol=1e-4)


def overfit(model, imgs, samples, max_iters: int = 300, target: float = 0.3):
    """AdamW on one batch until the total loss reaches ``target`` x its first value (or ``max_iters``);
    returns the totals. Shared by the two-image overfits of MonoDETR and MonoDGP."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    totals = []
    start = time.time()
    threads = torch.get_num_threads()
    # tensors this small gain nothing from threads, which spin badly when the cores are shared
    torch.set_num_threads(1)
    try:
        for _ in range(max_iters):
            losses = model.loss({'imgs': imgs}, samples)
            total = sum(losses.values())
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            totals.append(total.item())
            if totals[-1] <= target * totals[0]:
                break
    finally:
        torch.set_num_threads(threads)
    print(f'overfit: total loss {totals[0]:.2f} -> {totals[-1]:.2f} in {len(totals)} iterations, '
          f'{time.time() - start:.0f} s')
    return totals


def assert_overfits_two_images(build):
    """A tiny model from ``build(**kwargs)`` must bring its total loss on the two SCENES to 30 % of the
    first value within 300 iterations. Shared by MonoDETR and MonoDGP."""
    torch.manual_seed(0)
    model = build(num_queries=6, num_groups=2)
    model.init_weights()
    samples = [make_sample(scene) for scene in SCENES]
    imgs = torch.stack([draw(s) for s in samples])
    totals = overfit(model, imgs, samples)
    assert totals[-1] <= 0.3 * totals[0], f'the loss fell from {totals[0]:.2f} to {totals[-1]:.2f} only'


def test_two_image_overfit():
    assert_overfits_two_images(build_tiny_model)
