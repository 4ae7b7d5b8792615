"""Training parity with the official MonoDETR and MonoDGP (issue 22): one official training step on KITTI frame
000008 (``oracles/parity/public/<model>/{targets,train_outputs,losses}.npz``, described in
``../shared/oracles/parity/LOSSES.md``), with dropout and augmentation off and the 11 query groups.

- targets: the label file through the project's converter, KITTI dataset and training transforms of the
  official-behaviour configs, then the head's ``get_targets``, give the official criterion's targets;
- matching and losses: the official training-mode outputs fed to the project's heads give the official cost
  blocks, assignment of every layer and group, depth-map and region targets, every weighted loss term and
  the total;
- the whole step: the converted fixture weights in training mode give the official training outputs, losses
  and gradient norms.
"""
import math
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from mmdet3d.structures import Det3DDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData
from torch import nn

from perception.apis import init_model
from perception.datasets.converters.kitti_converter import create_kitti_infos
from perception.datasets.transforms import FilterMono3DInstances
from perception.models.dense_heads.monodetr_head import query_instances
from perception.models.dense_heads.region_seg_head import region_boxes, region_targets
from perception.models.losses import build_ddn_target, encode_heading
from perception.models.task_modules import boxes6d_to_xyxy
from perception.registry import DATASETS, MODELS
from perception.testing.parity import OFFICIAL_CLASSES, official_outputs

METHODS = ('monodetr', 'monodgp')
IMG_SIZE = (384, 1280)  # (H, W) of the official input
NUM_GROUPS = 11
# the official layers in the order of the project's head: decoder layers 1 and 2, then the last one
LAYERS = ('aux0', 'aux1', 'final')
# augmentations of the training pipelines, switched off as in the official step
AUGMENTATIONS = ('RandomFlipMono3D', 'RandomCropScaleMono3D', 'MixUp3D')
TARGET_ATOL = 1e-6
COST_ATOL = 1e-5
LOSS_RTOL = 1e-4
OUTPUT_ATOL = 1e-4
GRAD_RTOL, GRAD_ATOL = 1e-3, 1e-6


def official_key_to_project(key: str) -> str:
    """``loss_ce_0`` -> ``d0.loss_cls``, ``loss_giou_inter_2`` -> ``d2d2.loss_iou``, ``loss_depth`` -> same."""
    names = dict(loss_ce='loss_cls', loss_giou='loss_iou')
    if '_inter_' in key:
        name, layer = key.split('_inter_')
        return f'd2d{layer}.{names.get(name, name)}'
    name, _, layer = key.rpartition('_')
    if layer.isdigit():
        return f'd{layer}.{names.get(name, name)}'
    return names.get(key, key)


def assert_losses_equal(losses: dict, official: dict) -> None:
    """Every weighted term of the official criterion, and the total, within ``LOSS_RTOL``."""
    weighted = {official_key_to_project(key[len('weighted_'):]): float(value)
                for key, value in official.items() if key.startswith('weighted_')}
    assert sorted(losses) == sorted(weighted)
    for key, value in weighted.items():
        assert float(losses[key]) == pytest.approx(value, rel=LOSS_RTOL), key
    assert float(sum(losses.values())) == pytest.approx(float(official['total']), rel=LOSS_RTOL)


def build_head(model_cfg: Config) -> nn.Module:
    return MODELS.build(dict(model_cfg.bbox_head, train_cfg=model_cfg.train_cfg, test_cfg=model_cfg.test_cfg))


# ---------------------------------------------------------------------------------------------- targets

@pytest.fixture(scope='module')
def kitti_root(tmp_path_factory, shared_dir):
    """A one-frame KITTI training layout of frame 000008 with the fixture's label and calib files, and its
    infos written by the project's converter."""
    root = tmp_path_factory.mktemp('kitti')
    frame = shared_dir / 'oracles/parity/public/frame'
    for folder in ('image_2', 'calib', 'label_2'):
        (root / 'training' / folder).mkdir(parents=True)
    (root / 'ImageSets').mkdir()
    for split in ('train', 'val'):
        (root / 'ImageSets' / f'{split}.txt').write_text('000008\n')
    (root / 'training/image_2/000008.png').symlink_to(shared_dir / 'data/mmdet3d_demo/kitti/000008.png')
    shutil.copy(frame / '000008_calib_kitti.txt', root / 'training/calib/000008.txt')
    shutil.copy(frame / '000008_label_2.txt', root / 'training/label_2/000008.txt')
    create_kitti_infos(str(root), with_lidar=False)
    return root


def training_sample(cfg: Config, root: Path):
    """The dataset of the config's training set on ``root`` and the data sample of its frame, augmentation
    off (the photometric distortion left out, the other augmentations at probability 0)."""
    dataset_cfg = cfg.train_dataloader.dataset
    pipeline = [dict(step, prob=0.) if step['type'] in AUGMENTATIONS else step for step in dataset_cfg.pipeline
                if step['type'] != 'mmdet.PhotoMetricDistortion']
    for step in pipeline:
        if step['type'] == 'MixUp3D':
            step['dataset'] = dict(step['dataset'], data_root=str(root))
    dataset = DATASETS.build(dict(dataset_cfg, data_root=str(root), ann_file='kitti_infos_train.pkl',
                                  pipeline=pipeline))
    return dataset, dataset[0]['data_samples']


@pytest.mark.parametrize('name', METHODS)
def test_official_targets_from_the_label_file(name, kitti_root, official_configs, fixture_dir):
    official = np.load(fixture_dir(name) / 'targets.npz')
    cfg = Config.fromfile(official_configs[name])
    dataset, sample = training_sample(cfg, kitti_root)
    head = build_head(cfg.model)
    gt = head.get_targets([sample], IMG_SIZE)[0]

    classes = dataset.metainfo['classes']
    assert [classes[label] for label in gt.labels] == [OFFICIAL_CLASSES[label] for label in official['labels']]
    np.testing.assert_allclose(gt.centers_2d.numpy(), official['boxes_3d'][:, :2], rtol=0, atol=TARGET_ATOL)
    np.testing.assert_allclose(gt.lrtb.numpy(), official['boxes_3d'][:, 2:], rtol=0, atol=TARGET_ATOL)
    np.testing.assert_allclose(gt.depths.numpy(), official['depth'][:, 0], rtol=0, atol=TARGET_ATOL)
    np.testing.assert_allclose(gt.dims.numpy(), official['size_3d'][:, [2, 0, 1]], rtol=0, atol=TARGET_ATOL)
    bins, residuals = encode_heading(gt.alphas, head.num_heading_bins)
    np.testing.assert_array_equal(bins.numpy(), official['heading_bin'][:, 0])
    np.testing.assert_allclose(residuals.numpy(), official['heading_res'][:, 0], rtol=0, atol=TARGET_ATOL)
    # the 2D boxes (of the depth-map and region targets) as the official (cx, cy, w, h), normalised
    edges = (gt.pixel_bboxes + 0.5) / torch.tensor([IMG_SIZE[1], IMG_SIZE[0]] * 2)
    boxes = torch.cat([(edges[:, :2] + edges[:, 2:]) / 2, edges[:, 2:] - edges[:, :2]], dim=1)
    np.testing.assert_allclose(boxes.numpy(), official['boxes'], rtol=0, atol=TARGET_ATOL)
    if name == 'monodgp':
        losses = np.load(fixture_dir(name) / 'losses.npz')
        sizes = [losses[f'region_gt_resized{i}'].shape[-2:] for i in range(4)]
        targets = region_targets([region_boxes(sample)], IMG_SIZE, sizes, cfg.model.region_head.truncate_boxes)
        for i, target in enumerate(targets):
            np.testing.assert_allclose(target.numpy(), losses[f'region_gt_resized{i}'], rtol=0, atol=TARGET_ATOL)


def test_official_filters_leave_out_unknown_level_and_other_classes(kitti_root):
    """Of the 6 cars of frame 000008, the two of occlusion 3 are of the official 'UnKnown' level; a set of
    pedestrians and cyclists keeps none of them, and the default keeps all six."""
    def num_objects(**kwargs) -> int:
        dataset = DATASETS.build(dict(type='KittiMono3DDataset', data_root=str(kitti_root),
                                      ann_file='kitti_infos_train.pkl', metainfo=dict(classes=list(OFFICIAL_CLASSES)),
                                      **kwargs))
        return len(dataset.get_data_info(0)['ann_info']['gt_labels_3d'])

    assert num_objects() == 6
    assert num_objects(drop_unknown_level=True) == 4
    assert num_objects(ann_classes=['Pedestrian', 'Cyclist']) == 0
    with pytest.raises(ValueError, match='Truck'):
        num_objects(ann_classes=['Truck'])


def test_region_boxes_keep_the_objects_of_the_centre_filters():
    """The official region target paints the objects within the depth bounds whose projected centre falls
    outside the image or their box, which are not trained on."""
    boxes = np.array([[10, 10, 50, 50], [0, 0, 30, 30], [60, 10, 90, 50]], dtype=np.float32)
    results = dict(gt_bboxes=boxes, centers_2d=np.array([[30, 30], [-3, 10], [70, 30]], dtype=np.float32),
                   depths=np.array([10, 10, 80], dtype=np.float32), img_shape=(64, 128))
    results = FilterMono3DInstances(region_bboxes=True).transform(results)
    np.testing.assert_array_equal(results['gt_bboxes'], boxes[:1])
    np.testing.assert_array_equal(results['gt_region_bboxes'], boxes[:2])
    sample = Det3DDataSample(metainfo=dict(gt_region_bboxes=results['gt_region_bboxes']))
    np.testing.assert_array_equal(region_boxes(sample).numpy(), boxes[:2])


# ------------------------------------------------------------------ matching and losses on the official outputs

def official_targets(targets: dict) -> InstanceData:
    """The project's target fields of the official targets: dims (h, w, l) -> (l, h, w), heading bin and
    residual -> the angle, normalised (cx, cy, w, h) -> boxes in input pixels (pixel centres at integers)."""
    boxes_3d = torch.from_numpy(targets['boxes_3d'])
    center, size = torch.from_numpy(targets['boxes']).split(2, dim=1)
    scale = torch.tensor([IMG_SIZE[1], IMG_SIZE[0]] * 2)
    return InstanceData(
        labels=torch.from_numpy(targets['labels']).long(), centers_2d=boxes_3d[:, :2], lrtb=boxes_3d[:, 2:],
        bboxes=boxes6d_to_xyxy(boxes_3d), depths=torch.from_numpy(targets['depth'][:, 0]),
        dims=torch.from_numpy(targets['size_3d'][:, [2, 0, 1]]),
        alphas=torch.from_numpy(targets['heading_bin'][:, 0] * (math.pi / 6) + targets['heading_res'][:, 0]).float(),
        pixel_bboxes=torch.cat([center - size / 2, center + size / 2], dim=1) * scale - 0.5)


def head_outputs(outputs: dict) -> dict:
    """The project's per-layer head outputs (L, B, Q, ...) of the official ``train_outputs.npz`` (class
    columns in the official order, which the official targets' labels index)."""
    def layer(name: str, key: str) -> torch.Tensor:
        value = torch.from_numpy(outputs[key if name == 'final' else f'{name}_{key}'])
        return value[..., [2, 0, 1]] if key == 'pred_3d_dim' else value

    keys = dict(cls_scores='pred_logits', boxes='pred_boxes', dims='pred_3d_dim', angles='pred_angle',
                depths='pred_depth')
    return {field: torch.stack([layer(name, key) for name in LAYERS]) for field, key in keys.items()}


def head_outputs_2d(outputs: dict) -> dict:
    """MonoDGP's 2D decoder layers (L2, B, Q, ...) of the official ``train_outputs.npz``."""
    return {field: torch.stack([torch.from_numpy(outputs[f'inter{i}_{key}']) for i in range(3)])
            for field, key in dict(cls_scores='pred_logits', boxes='pred_boxes').items()}


@pytest.fixture(scope='module', params=METHODS)
def step(request, official_configs, fixture_dir):
    """The model name, the official config's model, and the official step's arrays."""
    model_cfg = Config.fromfile(official_configs[request.param]).model
    return dict(name=request.param, model_cfg=model_cfg, **{
        name: dict(np.load(fixture_dir(request.param) / f'{name}.npz'))
        for name in ('targets', 'train_outputs', 'losses')
    })


def test_official_costs_and_assignment_of_every_layer_and_group(step):
    head = build_head(step['model_cfg'])
    outputs = head_outputs(step['train_outputs'])
    layers = {name: (outputs['cls_scores'][i], outputs['boxes'][i]) for i, name in enumerate(LAYERS)}
    if step['name'] == 'monodgp':
        outputs_2d = head_outputs_2d(step['train_outputs'])
        layers.update({f'inter{i}': (outputs_2d['cls_scores'][i], outputs_2d['boxes'][i]) for i in range(3)})
    gt = official_targets(step['targets'])
    for name, (cls_scores, boxes) in layers.items():
        cost = head.assigner.cost(query_instances(cls_scores[0], boxes[0]), gt)
        np.testing.assert_allclose(cost.numpy(), step['losses'][f'cost_{name}'].reshape(cost.shape), rtol=0,
                                   atol=COST_ATOL, err_msg=name)
        gt_inds = head.assign(cls_scores, boxes, [gt], NUM_GROUPS)[0].gt_inds
        queries = torch.nonzero(gt_inds > 0).squeeze(1)
        np.testing.assert_array_equal(queries.numpy(), step['losses'][f'match_{name}_src'], err_msg=name)
        np.testing.assert_array_equal((gt_inds[queries] - 1).numpy(), step['losses'][f'match_{name}_tgt'],
                                      err_msg=name)


def test_official_depth_map_and_region_targets(step):
    head = build_head(step['model_cfg'])
    losses = step['losses']
    cells = torch.from_numpy(losses['ddn_gt_boxes2d_xyxy_feat'])
    bins, fg_mask = head.loss_depth_map.get_targets([cells], [torch.from_numpy(step['targets']['depth'][:, 0])],
                                                    (24, 80))
    np.testing.assert_array_equal(bins.numpy(), losses['ddn_depth_target_bin'])
    np.testing.assert_array_equal(fg_mask.numpy(), losses['ddn_fg_mask'])
    # the head's cells: input pixels (centres at integers) to edge coordinates, times map size over input size
    gt = official_targets(step['targets'])
    np.testing.assert_allclose(((gt.pixel_bboxes + 0.5) / 16).numpy(), cells.numpy(), rtol=0, atol=COST_ATOL)
    if step['name'] == 'monodgp':
        sizes = [losses[f'region_gt_resized{i}'].shape[-2:] for i in range(4)]
        targets = region_targets([gt.pixel_bboxes], IMG_SIZE, sizes, step['model_cfg'].region_head.truncate_boxes)
        for i, target in enumerate(targets):
            np.testing.assert_allclose(target.numpy(), losses[f'region_gt_resized{i}'], rtol=0, atol=TARGET_ATOL)


def losses_of_official_outputs(step, model_cfg: Config) -> dict:
    """The losses of ``model_cfg``'s heads on the official training outputs and targets."""
    head = build_head(model_cfg)
    train_outputs = step['train_outputs']
    batch_gt = [official_targets(step['targets'])]
    depth_logits = torch.from_numpy(train_outputs['pred_depth_map_logits'])
    if step['name'] == 'monodetr':
        return head.loss_by_feat(head_outputs(train_outputs), depth_logits, batch_gt, IMG_SIZE, NUM_GROUPS)
    losses = head.loss_by_feat(head_outputs(train_outputs), depth_logits, batch_gt, IMG_SIZE, NUM_GROUPS,
                               outputs_2d=head_outputs_2d(train_outputs))
    region_probs = [torch.from_numpy(train_outputs[f'pred_region_prob{i}']) for i in range(4)]
    losses.update(MODELS.build(model_cfg.region_head).loss(region_probs, [batch_gt[0].pixel_bboxes], IMG_SIZE))
    return losses


def test_official_loss_terms_and_total(step):
    assert_losses_equal(losses_of_official_outputs(step, step['model_cfg']), step['losses'])


# each official constant of the criterion, the project's default in its place, and the term it moves (by more
# than the 1e-6 relative that the float32 recomputations of the official terms agree within)
LOSS_SWITCHES = [
    ('loss_depth', {'bbox_head.loss_depth.scale': math.sqrt(2)}),
    ('loss_depth_map', {'bbox_head.loss_depth_map.one_hot_eps': 0.}),
    ('loss_region', {'region_head.truncate_boxes': False}),
]


def test_each_official_loss_switch_is_needed(step):
    official_losses = losses_of_official_outputs(step, step['model_cfg'])
    for term, default in LOSS_SWITCHES:
        if term not in official_losses:  # MonoDETR has no region head
            continue
        official = float(step['losses'][f'weighted_{term}'])
        assert float(official_losses[term]) == pytest.approx(official, rel=1e-6), term
        model_cfg = Config(step['model_cfg'].to_dict())
        model_cfg.merge_from_dict(default)
        assert float(losses_of_official_outputs(step, model_cfg)[term]) != pytest.approx(official, rel=5e-6), term


def test_official_depth_map_slices_drop_boxes_with_a_negative_corner():
    """A box from cell -1 paints nothing with the official Python slices ([-1:3] is empty), cells 0-2 clipped."""
    boxes, depths = torch.tensor([[-0.5, 2., 2.5, 4.]]), torch.tensor([10.])
    official_map, official_mask = build_ddn_target(boxes, depths, (6, 8), clip_boxes=False)
    assert not official_mask.any() and not official_map.any()
    depth_map, mask = build_ddn_target(boxes, depths, (6, 8))
    assert mask.sum() == 6 and mask[2:4, :3].all()
    assert (depth_map[mask] == 10).all()


# ---------------------------------------------------------------------------------------------- the whole step

def official_parameter_names(parity_converter, name: str) -> Callable[[str], str]:
    """The project's name of an official parameter by the converter's key map (tied aliases to their
    canonical name); the key translation lives in ``monodetr_official.py``, which MonoDGP's reuses."""
    translate = parity_converter('monodetr')._translate
    converter = parity_converter(name)
    rules, aliases = getattr(converter, f'{name.upper()}_RULES'), getattr(converter, f'{name.upper()}_ALIASES')
    return lambda key: translate(translate(key, aliases) or key, rules)


@pytest.mark.slow
@pytest.mark.parametrize('name', METHODS)
def test_official_training_step(name, kitti_root, official_configs, official_checkpoints, parity_converter,
                                fixture_dir):
    """Training-mode outputs of the 550 queries, every loss term and the total, and the gradient norm of every
    trainable parameter (the same set as the official: the backbone's stem and layer1 frozen)."""
    train_outputs = dict(np.load(fixture_dir(name) / 'train_outputs.npz'))
    official_losses = dict(np.load(fixture_dir(name) / 'losses.npz'))
    inputs = np.load(fixture_dir(name) / 'inputs.npz')
    cfg = Config.fromfile(official_configs[name])
    _, sample = training_sample(cfg, kitti_root)
    model = init_model(str(official_configs[name]), str(official_checkpoints(name)[1]))
    model.train()
    for module in model.modules():  # the official step ran with dropout off
        if isinstance(module, nn.Dropout):
            module.p = 0.
        elif isinstance(module, nn.MultiheadAttention):
            module.dropout = 0.
    imgs = {'imgs': torch.from_numpy(inputs['image'])}

    with torch.no_grad():
        raw = model.raw_outputs(model.forward_features(imgs, model.num_groups), [sample.metainfo])
    outputs = official_outputs(raw, model.dataset_meta['classes'])
    assert sorted(outputs) == sorted(train_outputs)
    for key, value in train_outputs.items():
        np.testing.assert_allclose(outputs[key], value, rtol=0, atol=OUTPUT_ATOL, err_msg=key)

    model.zero_grad()
    losses = model.loss(imgs, [sample])
    assert_losses_equal({key: value.detach() for key, value in losses.items()}, official_losses)
    sum(losses.values()).backward()

    translate = official_parameter_names(parity_converter, name)
    official_norms = {translate(key): norm for key, norm in zip(official_losses['gradnorm_names'],
                                                                official_losses['gradnorm']) if np.isfinite(norm)}
    trainable = {key: param for key, param in model.named_parameters() if param.requires_grad}
    assert sorted(trainable) == sorted(official_norms)
    for key, param in trainable.items():
        norm = float(param.grad.double().norm())
        expected = official_norms[key]
        if expected < GRAD_ATOL:
            assert norm == pytest.approx(expected, abs=GRAD_ATOL), key
        else:
            assert norm == pytest.approx(expected, rel=GRAD_RTOL), key
