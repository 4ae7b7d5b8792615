"""The whole MonoDETR: configs, output shapes, decoding and a two-image overfit, on tiny shapes."""
import glob

import pytest
import torch
from mmdet3d.structures import CameraInstance3DBoxes
from mmengine.config import Config

from perception.models.losses import encode_heading
from perception.registry import MODELS
from perception.testing import SCENES, build_from_config, mono3d_sample, overfit_two_scenes, tiny_mono3d_detector_cfg

SYNTH_CONFIG = 'configs/monodetr/monodetr_r18_demo_synthkitti-mono3d.py'


def tiny_model_cfg(num_queries: int = 10, num_groups: int = 3) -> Config:
    return tiny_mono3d_detector_cfg(SYNTH_CONFIG, num_queries, num_groups)


def build_tiny_model(**kwargs):
    with pytest.warns(UserWarning, match='random initialisation'):
        return MODELS.build(tiny_model_cfg(**kwargs).model)


def test_every_monodetr_config_builds():
    paths = sorted(glob.glob('configs/monodetr/*.py'))
    assert 'configs/monodetr/monodetr_r50_195e_kitti-mono3d.py' in paths and SYNTH_CONFIG in paths
    for path in paths:
        _, model = build_from_config(path)
        # the official 50 queries per group; the main job's CPU recipe takes 25
        assert model.transformer.num_queries == (25 if 'main-job' in path else 50) and model.num_groups == 11
        assert model.depth_predictor.bin_centers.shape == (81, )


def test_official_defaults_in_the_kitti_config():
    cfg = Config.fromfile('configs/monodetr_kitti.py')
    assert cfg.model.backbone.depth == 50 and cfg.input_size == (1280, 384)
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint='checkpoints/resnet50_imagenet.pth')
    assert cfg.train_dataloader.batch_size == 16
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=2e-4, weight_decay=1e-4, fused=True)
    assert cfg.train_cfg.max_epochs == 195 and cfg.param_scheduler[0].milestones == [125, 165]
    head = cfg.model.bbox_head
    weights = {k: head[k].loss_weight for k in head if k.startswith('loss_')}
    assert weights == dict(loss_cls=2., loss_center=10., loss_bbox=5., loss_iou=2., loss_dim=1., loss_angle=1.,
                           loss_depth=1., loss_depth_map=1.)
    assert (head.loss_depth_map.fg_weight, head.loss_depth_map.bg_weight) == (13., 1.)
    costs = [c.weight for c in cfg.model.train_cfg.assigner.match_costs]
    assert costs == [2., 5., 2., 10.]
    assert cfg.model.test_cfg.max_per_img == 50 and cfg.model.test_cfg.score_thr == 0.2


def test_missing_pretrained_backbone_file_is_an_error():
    cfg = tiny_model_cfg()
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint='/nonexistent/resnet18.pth')
    model = MODELS.build(cfg.model)
    with pytest.raises(FileNotFoundError, match='nonexistent'):
        model.init_weights()


def test_backbone_weights_load_from_a_local_checkpoint(tmp_path, recwarn):
    cfg = tiny_model_cfg()
    source = MODELS.build(cfg.model.backbone)
    # a torchvision-style file: the backbone's names plus the classifier, which is ignored
    weights = dict(source.state_dict(), **{'fc.weight': torch.zeros(10, 128), 'fc.bias': torch.zeros(10)})
    torch.save(weights, tmp_path / 'resnet.pth')
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(tmp_path / 'resnet.pth'))
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
    samples = [mono3d_sample(SCENES[0], img_size), mono3d_sample(SCENES[1], img_size)]
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


def test_transformer_steps_hand_dicts_to_each_other():
    """pre_transformer -> forward_encoder -> pre_decoder -> forward_decoder, called one by one, give what the
    transformer's forward gives (the steps a variant overrides, as MonoDGP's forward_decoder)."""
    torch.manual_seed(0)
    model = build_tiny_model(num_queries=4, num_groups=2).eval()
    transformer = model.transformer
    mlvl_feats = model.extract_feat({'imgs': torch.randn(1, 3, 96, 160)})
    mlvl_pos_embeds = model.positional_encodings(mlvl_feats)
    _, depth_embed, _ = model.depth_predictor(mlvl_feats, mlvl_pos_embeds[1])
    with torch.no_grad():
        encoder_inputs, decoder_inputs = transformer.pre_transformer(mlvl_feats, mlvl_pos_embeds)
        assert encoder_inputs['feat'].shape == (1, 12 * 20 + 6 * 10 + 3 * 5 + 2 * 3, 32)
        decoder_inputs.update(transformer.forward_encoder(**encoder_inputs))
        decoder_inputs.update(transformer.pre_decoder(1, num_groups=2))
        assert decoder_inputs['query'].shape == (1, 8, 32) and decoder_inputs['reference_points'].shape == (1, 8, 2)
        steps = transformer.forward_decoder(**decoder_inputs, depth_embed=depth_embed, num_groups=2,
                                            reg_branches=model.bbox_head.reg_branches)
        whole = transformer(mlvl_feats, mlvl_pos_embeds, depth_embed, num_groups=2,
                            reg_branches=model.bbox_head.reg_branches)
    assert set(steps) == set(whole) == {'hidden_states', 'references'}
    torch.testing.assert_close(steps['hidden_states'], whole['hidden_states'])
    with pytest.raises(ValueError, match='3 query groups asked, 2 built'):
        transformer.pre_decoder(1, num_groups=3)


def test_decoding_recovers_boxes_from_perfect_outputs():
    """Feed the decoder the raw outputs that describe known boxes: the boxes must come back."""
    model = build_tiny_model(num_queries=2, num_groups=1)
    head = model.bbox_head
    sample = mono3d_sample(SCENES[0])
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


@pytest.mark.slow
def test_two_image_overfit():
    """The total loss on the two SCENES falls to 30 % of its first value within 300 iterations."""
    totals = overfit_two_scenes(build_tiny_model)
    assert totals[-1] <= 0.3 * totals[0], f'the loss fell from {totals[0]:.2f} to {totals[-1]:.2f} only'


def test_main_job_config_is_the_cpu_model_with_its_own_recipe():
    """The main job's config: the CPU model with fewer queries on smaller inputs, its own schedule and precision."""
    demo = Config.fromfile('configs/monodetr/monodetr_r18_demo_synthkitti-mono3d.py')
    main = Config.fromfile('configs/monodetr/monodetr_r18_main-job_synthkitti-mono3d.py')
    assert main.model.transformer.num_queries == 25 < demo.model.transformer.num_queries
    main.model.transformer.num_queries = demo.model.transformer.num_queries
    assert main.model.to_dict() == demo.model.to_dict()
    # the same data pipelines at a smaller input size
    for loader in ('train_dataloader', 'test_dataloader'):
        main_loader, demo_loader = main[loader].to_dict(), demo[loader].to_dict()
        main_steps, demo_steps = main_loader['dataset'].pop('pipeline'), demo_loader['dataset'].pop('pipeline')
        assert main_loader == demo_loader
        assert [t['type'] for t in main_steps] == [t['type'] for t in demo_steps]
        crop = next(t for t in main_steps if t['type'] == 'RandomCropScaleMono3D')
        assert crop['out_size'] == main.input_size and main.input_size[0] < demo.input_size[0]
    assert main.optim_wrapper.type == 'CPUAmpOptimWrapper'
    assert main.optim_wrapper.optimizer.to_dict() == demo.optim_wrapper.optimizer.to_dict()
    assert main.train_cfg.max_iters == main.default_hooks.checkpoint.interval
    decay = main.param_scheduler[1]
    assert decay.end == main.train_cfg.max_iters and 0 < decay.milestones[0] < main.train_cfg.max_iters
