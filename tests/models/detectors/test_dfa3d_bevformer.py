"""BEVFormer with DFA3D end to end on a tiny synthetic batch (loss and predict for DFA3D, the 2D baseline and the
ground-truth depth), and every config of configs/dfa3d builds."""
import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from mmengine.config import Config
from mmengine.structures import InstanceData

from perception.registry import MODELS

CONFIG_DIR = Path(__file__).resolve().parents[3] / 'configs/dfa3d'
CONFIGS = sorted(CONFIG_DIR.glob('*.py'))
HEIGHT, WIDTH = 96, 192


def lidar2img_ring(views: int = 6) -> np.ndarray:
    """(V, 4, 4) cameras at the LiDAR origin looking out at yaws 2 pi v / V, 90 degree field of view."""
    focal = WIDTH / 2
    intrinsics = np.array([[focal, 0, WIDTH / 2, 0], [0, focal, HEIGHT / 2, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    mats = []
    for v in range(views):
        yaw = 2 * math.pi * v / views
        forward, right = np.array([math.cos(yaw), math.sin(yaw), 0]), np.array([math.sin(yaw), -math.cos(yaw), 0])
        lidar2cam = np.eye(4)
        lidar2cam[:3, :3] = np.stack([right, [0, 0, -1], forward])
        mats.append(intrinsics @ lidar2cam)
    return np.stack(mats).astype(np.float32)


def synthetic_batch(batch: int = 2):
    torch.manual_seed(0)
    imgs = torch.rand(batch, 6, 3, HEIGHT, WIDTH) * 255
    samples, points = [], []
    for _ in range(batch):
        sample = Det3DDataSample(metainfo=dict(lidar2img=lidar2img_ring(), img_shape=(HEIGHT, WIDTH)))
        boxes = torch.tensor([[10.0, 2.0, -1.5, 4.0, 2.0, 1.6, 0.3, 1.0, 0.0],
                              [-5.0, -12.0, -1.0, 0.8, 0.8, 1.7, -1.0, 0.0, 0.5]])
        sample.gt_instances_3d = InstanceData(bboxes_3d=LiDARInstance3DBoxes(boxes, box_dim=9),
                                              labels_3d=torch.tensor([0, 8]))
        samples.append(sample)
        xyz = torch.rand(2000, 3) * torch.tensor([80., 80., 4.]) - torch.tensor([40., 40., 3.])
        points.append(torch.cat([xyz, torch.rand(2000, 2)], 1))
    return dict(img=list(imgs), points=points), samples


def tiny_model(**overrides):
    """The synthetic-world config shrunk further: ResNet-18 at 16 base channels, 32 channels, BEV 10x10, 1
    encoder and 2 decoder layers of 20 queries."""
    cfg = Config.fromfile(str(CONFIG_DIR / 'dfa3d_bevformer_r18_tiny_synthnuscenes.py'))
    model = copy.deepcopy(cfg.model)
    model.backbone.update(base_channels=16)
    model.neck.update(in_channels=[64, 128], out_channels=32)
    model.depth_head.update(in_channels=32, mid_channels=32)
    model.encoder.update(bev_h=10, bev_w=10, embed_dims=32, num_layers=1, feedforward_channels=64)
    model.pts_bbox_head.update(embed_dims=32, num_query=20, num_layers=2, feedforward_channels=64)
    model.update(overrides)
    return MODELS.build(model)


@pytest.mark.parametrize('overrides, depth_loss', [(dict(), True), (dict(use_dfa3d=False), False),
                                                   (dict(depth_source='lidar'), False)])
def test_loss_and_predict(overrides, depth_loss):
    torch.manual_seed(0)
    model = tiny_model(**overrides)
    assert (model.depth_head is not None) == depth_loss
    inputs, samples = synthetic_batch()
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert ('loss_depth' in losses) == depth_loss
    # the 2 decoder layers' losses (d0. prefix for the first)
    assert {'loss_cls', 'loss_bbox', 'd0.loss_cls', 'd0.loss_bbox'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    sca = model.encoder.layers[0].cross_attn.deformable_attention
    grad = sca.sampling_offsets.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    if overrides.get('use_dfa3d', True):
        assert sca.sampling_offsets_depth.weight.grad.abs().sum() > 0
    if depth_loss:
        assert model.depth_head.code_conv.weight.grad.abs().sum() > 0

    model.eval()
    if overrides.get('depth_source') != 'lidar':
        inputs = dict(img=inputs['img'])  # testing without points
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), training=False)
        results = model.predict(data['inputs'], data['data_samples'])
    pred = results[0].pred_instances_3d
    # 20 queries x 10 classes, the best 300 pairs capped at 200, fewer after the range filter
    assert 0 < len(pred.scores_3d) <= 200 and pred.bboxes_3d.tensor.shape[1] == 9
    assert torch.isfinite(pred.bboxes_3d.tensor).all() and torch.isfinite(pred.scores_3d).all()


def test_lidar_depth_needs_points():
    model = tiny_model(depth_source='lidar').eval()
    inputs, samples = synthetic_batch(1)
    with pytest.raises(ValueError, match='points'):
        model.predict(dict(imgs=torch.stack(inputs['img'])), samples)


@pytest.mark.parametrize('path', CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(str(path))
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'DFA3DBEVFormer'
    assert cfg.val_evaluator.type == 'NuScenesMetric'
    tiny = 'tiny' in path.name
    assert model.use_dfa3d == (not path.name.startswith('bevformer'))
    assert model.depth_source == ('lidar' if 'gtdepth' in path.name else 'predicted')
    assert (model.encoder.bev_h, cfg.train_cfg.max_iters) == ((25, 600) if tiny else (150, 24 * 3516))
