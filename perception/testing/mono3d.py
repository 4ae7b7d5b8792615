"""Monocular 3D builders shared by the tests and the benchmarks: data samples from camera boxes, the two
learnable scenes of the overfit tests, tiny MonoDETR / MonoDGP configs and the overfit loop."""
import time
import warnings
from typing import Callable, List, Sequence, Tuple

import numpy as np
import torch
from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from torch import Tensor, nn

from perception.registry import MODELS
from perception.structures import project_points, projected_boxes_2d

# The tiny tests' camera: KITTI's P2 scaled to a 320 x 96 input.
TINY_IMG_SIZE = (96, 320)
TINY_CAM2IMG = np.array([[180., 0., 160., 0.], [0., 180., 48., 0.], [0., 0., 1., 0.], [0., 0., 0., 1.]])
# Two scenes of two objects each, rows (x, y, z bottom centre, l, h, w, ry, label), in front of TINY_CAM2IMG.
SCENES = [
    [[-2., 1.6, 12., 3.9, 1.5, 1.6, 0.3, 2], [3., 1.6, 20., 0.8, 1.7, 0.6, -1.2, 0]],
    [[1., 1.6, 9., 3.7, 1.5, 1.6, 1.4, 2], [-4., 1.6, 25., 1.8, 1.7, 0.6, 2.5, 1]],
]


def mono3d_sample(objects, img_size: Tuple[int, int] = TINY_IMG_SIZE,
                  cam2img: np.ndarray = TINY_CAM2IMG) -> Det3DDataSample:
    """A data sample with the camera boxes ``objects``, rows (x, y, z bottom centre, l, h, w, ry, label).

    The 3D ground truth carries the boxes, labels, projected gravity centres and depths; the 2D ground
    truth the bounding rectangle of the projected corners. ``img_size`` is (H, W), ``cam2img`` 4x4.
    """
    objects = np.asarray(objects, dtype=np.float32).reshape(-1, 8)
    boxes = CameraInstance3DBoxes(torch.from_numpy(objects[:, :7]))
    centers = project_points(boxes.gravity_center.numpy(), cam2img)
    bboxes = projected_boxes_2d(boxes.corners.numpy(), cam2img)
    img_size = tuple(img_size)
    sample = Det3DDataSample(metainfo=dict(cam2img=cam2img, img_shape=img_size, ori_shape=img_size,
                                           pad_shape=img_size, box_type_3d=CameraInstance3DBoxes))
    labels = torch.from_numpy(objects[:, 7]).long()
    sample.gt_instances_3d = InstanceData(bboxes_3d=boxes, labels_3d=labels,
                                          centers_2d=torch.from_numpy(centers).float(),
                                          depths=boxes.gravity_center[:, 2])
    sample.gt_instances = InstanceData(bboxes=torch.from_numpy(bboxes).float(), labels=labels)
    return sample


def paint_boxes(sample: Det3DDataSample, img_size: Tuple[int, int] = TINY_IMG_SIZE) -> Tensor:
    """A learnable picture of a sample, (3, H, W): each object a flat patch of its class colour (red, green,
    blue for labels 0, 1, 2) over its 2D box, on -1."""
    image = torch.full((3, ) + tuple(img_size), -1.)
    colours = torch.tensor([[1., 0., 0.], [0., 1., 0.], [0., 0., 1.]])
    for box, label in zip(sample.gt_instances.bboxes.round().long(), sample.gt_instances.labels):
        x1, y1, x2, y2 = box.tolist()
        image[:, max(y1, 0):y2, max(x1, 0):x2] = colours[label][:, None, None]
    return image


def two_scene_batch() -> Tuple[Tensor, List[Det3DDataSample]]:
    """The :data:`SCENES` as a batch: images (2, 3, H, W) painted by :func:`paint_boxes` and their samples."""
    samples = [mono3d_sample(scene) for scene in SCENES]
    return torch.stack([paint_boxes(sample) for sample in samples]), samples


def build_from_config(config: str) -> Tuple[Config, nn.Module]:
    """A config file and its model, built in the config's ``default_scope`` (without the warning that a
    backbone without pretrained weights gives)."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*random initialisation')
        return cfg, MODELS.build(cfg.model)


def tiny_mono3d_detector_cfg(config: str, num_queries: int = 10, num_groups: int = 3, **transformer) -> Config:
    """A MonoDETR or MonoDGP config shrunk for unit tests: 16-channel ResNet-18, 32-d transformer with one
    encoder layer, ``num_queries`` x ``num_groups`` queries, no dropout.

    Args:
        config: the config file to shrink (its ``default_scope`` is made the current one).
        num_queries, num_groups: queries per group and query groups.
        **transformer: more transformer settings (MonoDGP's ``group_self_attn``).
    """
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    dims = 32
    attn = dict(embed_dims=dims, num_heads=4, attn_drop=0., proj_drop=0.)
    msda = dict(embed_dims=dims, num_heads=4, num_levels=4, num_points=2, dropout=0.)
    ffn = dict(embed_dims=dims, feedforward_channels=dims, num_fcs=2, ffn_drop=0.,
               act_cfg=dict(type='ReLU', inplace=True))
    model = dict(
        backbone=dict(base_channels=16),
        neck=dict(in_channels=[32, 64, 128], out_channels=dims, norm_cfg=dict(type='GN', num_groups=8)),
        positional_encoding=dict(num_feats=dims // 2),
        depth_predictor=dict(embed_dims=dims, num_heads=4, feedforward_channels=dims, dropout=0.,
                             num_norm_groups=8),
        transformer=dict(
            num_queries=num_queries, num_groups=num_groups,
            encoder=dict(num_layers=1, layer_cfg=dict(self_attn_cfg=msda, ffn_cfg=ffn)),
            decoder=dict(layer_cfg=dict(depth_cross_attn_cfg=attn, self_attn_cfg=attn, cross_attn_cfg=msda,
                                        ffn_cfg=ffn)),
            **transformer),
        bbox_head=dict(embed_dims=dims))
    if 'region_head' in cfg.model:
        model['region_head'] = dict(embed_dims=dims, num_norm_groups=8)
    if 'decoder_2d' in cfg.model.transformer:
        model['transformer']['decoder_2d'] = dict(
            layer_cfg=dict(self_attn_cfg=attn, cross_attn_cfg=msda, ffn_cfg=ffn))
    cfg.merge_from_dict(dict(model=model))
    return cfg


def overfit(model: nn.Module, imgs: Tensor, samples: Sequence[Det3DDataSample], max_iters: int = 300,
            target: float = 0.3) -> List[float]:
    """AdamW (lr 1e-3) on one batch until the total loss reaches ``target`` x its first value (or
    ``max_iters``), on one thread; returns the totals."""
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


def overfit_two_scenes(build: Callable[..., nn.Module], max_iters: int = 300, target: float = 0.3) -> List[float]:
    """:func:`overfit` on :func:`two_scene_batch` of a model ``build(num_queries=6, num_groups=2)`` built
    and initialised under seed 0; returns the totals."""
    torch.manual_seed(0)
    model = build(num_queries=6, num_groups=2)
    model.init_weights()
    return overfit(model, *two_scene_batch(), max_iters=max_iters, target=target)
