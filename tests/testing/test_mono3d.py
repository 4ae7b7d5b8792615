"""perception.testing: the mono-3D builders shared by the model tests and the benchmarks."""
import numpy as np
import pytest
import torch

from perception.testing import (SCENES, TINY_CAM2IMG, mono3d_sample, paint_boxes, tiny_mono3d_detector_cfg,
                                two_scene_batch)


def test_mono3d_sample_projects_its_boxes():
    objects = [[-2., 1.6, 12., 3.9, 1.5, 1.6, 0.3, 2], [3., 1.6, 20., 0.8, 1.7, 0.6, -1.2, 0]]
    sample = mono3d_sample(objects, (96, 320), TINY_CAM2IMG)
    gt3d, gt2d = sample.gt_instances_3d, sample.gt_instances
    assert gt3d.labels_3d.tolist() == [2, 0] == gt2d.labels.tolist()
    assert torch.allclose(gt3d.depths, torch.tensor([12., 20.]))
    # the gravity centre (half a height above the bottom centre) projects by the pinhole model
    expected = torch.tensor([[160 + 180 * -2 / 12, 48 + 180 * (1.6 - 0.75) / 12],
                             [160 + 180 * 3 / 20, 48 + 180 * (1.6 - 0.85) / 20]])
    assert torch.allclose(gt3d.centers_2d, expected, atol=1e-4)
    x1, y1, x2, y2 = gt2d.bboxes.unbind(1)
    cx, cy = gt3d.centers_2d.unbind(1)
    assert ((x1 < cx) & (cx < x2) & (y1 < cy) & (cy < y2)).all()
    assert sample.img_shape == (96, 320) and np.array_equal(sample.metainfo['cam2img'], TINY_CAM2IMG)


def test_mono3d_sample_without_objects():
    sample = mono3d_sample(np.zeros((0, 8)), (96, 320), TINY_CAM2IMG)
    assert sample.gt_instances.bboxes.shape == (0, 4) and sample.gt_instances_3d.centers_2d.shape == (0, 2)


def test_two_scenes_are_painted_in_their_class_colours():
    imgs, samples = two_scene_batch()
    assert imgs.shape == (2, 3, 96, 320) and len(samples) == len(SCENES) == 2
    assert np.array_equal(samples[0].metainfo['cam2img'], TINY_CAM2IMG)
    torch.testing.assert_close(imgs[1], paint_boxes(samples[1]))
    # the first object of the first scene is a Car (label 2, blue): its box centre is blue, a corner is not
    x1, y1, x2, y2 = samples[0].gt_instances.bboxes[0].tolist()
    assert imgs[0, :, int((y1 + y2) / 2), int((x1 + x2) / 2)].tolist() == [0., 0., 1.]
    assert imgs[0, :, 0, 0].tolist() == [-1., -1., -1.]


@pytest.mark.parametrize('config', ['configs/monodetr/monodetr_r18_demo_synthkitti-mono3d.py',
                                    'configs/monodgp/monodgp_r18_demo_synthkitti-mono3d.py'])
def test_tiny_detector_configs_shrink_every_part(config):
    cfg = tiny_mono3d_detector_cfg(config, num_queries=4, num_groups=2).model
    assert (cfg.transformer.num_queries, cfg.transformer.num_groups) == (4, 2)
    assert cfg.backbone.base_channels == 16 and cfg.transformer.encoder.num_layers == 1
    assert cfg.bbox_head.embed_dims == cfg.neck.out_channels == cfg.depth_predictor.embed_dims == 32
    assert cfg.transformer.decoder.layer_cfg.cross_attn_cfg.dropout == 0.
    if 'region_head' in cfg:
        assert cfg.region_head.embed_dims == 32
        assert cfg.transformer.decoder_2d.layer_cfg.self_attn_cfg.embed_dims == 32
