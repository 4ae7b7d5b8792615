import copy

import pytest
import torch
from mmdet.models.dense_heads import SSDHead as MMDetSSDHead
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from perception.models.dense_heads import SSDHead
from perception.registry import MODELS, TASK_UTILS

SSD300_MAPS = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]


def config(name):
    cfg = Config.fromfile(f'configs/ssd/{name}')
    init_default_scope(cfg.default_scope)
    return cfg


def min_max_sizes(anchors):
    """SSDAnchorGenerator keeps min sizes as base sizes and the extra square as scale sqrt(max / min)."""
    maxes = [round(base * float(scales[1])**2) for base, scales in zip(anchors.base_sizes, anchors.scales)]
    return list(anchors.base_sizes), maxes


def test_ssd300_coco_anchor_sizes_and_prior_count():
    anchors = TASK_UTILS.build(config('ssd300_vgg16_120e_coco.py').model.bbox_head.anchor_generator)
    assert min_max_sizes(anchors) == ([21, 45, 99, 153, 207, 261], [45, 99, 153, 207, 261, 315])
    assert anchors.num_base_priors == [4, 6, 6, 6, 4, 4]
    priors = anchors.grid_priors(SSD300_MAPS, device='cpu')
    assert sum(p.shape[0] for p in priors) == 8732


@pytest.mark.parametrize('name, first_min, first_max', [
    ('ssd300_vgg16_240e_voc0712.py', 30, 60),  # (10 %, 20 %) of 300
    ('ssd512_vgg16_120e_coco.py', 20, 51),  # (4 %, 10 %) of 512
])
def test_first_level_rule_of_other_configs(name, first_min, first_max):
    mins, maxes = min_max_sizes(TASK_UTILS.build(config(name).model.bbox_head.anchor_generator))
    assert (mins[0], maxes[0]) == (first_min, first_max)


def test_ssd_test_settings():
    cfg = config('ssd300_vgg16_120e_coco.py').model
    assert cfg.test_cfg.nms.iou_threshold == 0.45
    assert cfg.train_cfg.neg_pos_ratio == 3


def test_hard_negative_mining_keeps_three_negatives_per_positive():
    cfg = _head_cfg()
    cfg.num_classes = 2
    head = SSDHead(**cfg, train_cfg=dict(neg_pos_ratio=3, smoothl1_beta=1.0, assigner=config(
        'ssd300_vgg16_120e_coco.py').model.train_cfg.assigner))
    # One positive (class 0) and six negatives (background = 2) with increasing CE losses.
    logits = torch.tensor([[2., 0., 0.]] + [[k, 0., 0.] for k in range(6)])
    labels = torch.tensor([0, 2, 2, 2, 2, 2, 2])
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction='none')
    loss_cls, _ = head.loss_by_feat_single(
        logits, torch.zeros(7, 4), torch.zeros(7, 4), labels, torch.ones(7), torch.zeros(7, 4),
        torch.zeros(7, 4), avg_factor=1)
    expected = ce[0] + ce[1:].topk(3).values.sum()  # the three hardest negatives: logits 5, 4, 3
    torch.testing.assert_close(loss_cls[0], expected)


def _head_inputs(num_classes=3):
    feats = tuple(torch.randn(1, 8, h, w) for h, w in SSD300_MAPS)
    meta = dict(img_shape=(300, 300), ori_shape=(300, 300), scale_factor=(1.0, 1.0), pad_shape=(300, 300),
                batch_input_shape=(300, 300))
    return feats, [DetDataSample(metainfo=meta)]


def _head_cfg():
    cfg = copy.deepcopy(config('ssd300_vgg16_120e_coco.py').model.bbox_head)
    cfg.pop('type')
    cfg.update(num_classes=3, in_channels=(8, ) * 6)
    return cfg


def test_upstream_bug_mmdet_ssd_head_cannot_predict():
    """The bug fixed by perception's SSDHead (mmdetection #11305, #11780): fails on mmdet 3.3.0."""
    head = MMDetSSDHead(**_head_cfg(), test_cfg=config('ssd300_vgg16_120e_coco.py').model.test_cfg)
    with pytest.raises(AttributeError, match='loss_cls'):
        head.predict(*_head_inputs())


def test_ssd_head_predicts():
    test_cfg = config('ssd300_vgg16_120e_coco.py').model.test_cfg
    head = MODELS.build(dict(type='SSDHead', **_head_cfg(), test_cfg=test_cfg))
    assert type(head) is SSDHead
    results = head.predict(*_head_inputs())
    assert len(results) == 1
    res = results[0]
    assert res.bboxes.shape[1] == 4 and len(res.bboxes) <= 200
    assert (res.labels < 3).all() and (res.scores >= 0.02).all()


def test_ssd300_train_step_and_predict():
    """The full SSD300 (random-init SSDVGG) on one 300x300 image: the 38/19/10/5/3/1 layout holds."""
    torch.manual_seed(0)
    cfg = config('ssd300_vgg16_120e_coco.py')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    model_cfg.bbox_head.num_classes = 3
    model = MODELS.build(model_cfg)
    # As the Runner does: SSDVGG's L2Norm scale is uninitialised memory until init_weights().
    model.init_weights()
    meta = dict(img_shape=(300, 300), ori_shape=(300, 300), scale_factor=(1.0, 1.0), pad_shape=(300, 300),
                batch_input_shape=(300, 300))
    sample = DetDataSample(metainfo=meta)
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[40., 50., 200., 220.]]), labels=torch.tensor([1]))
    # A normalised image, as the data preprocessor gives.
    image = torch.randn(1, 3, 300, 300)
    feats = model.extract_feat(image)
    assert [tuple(f.shape[-2:]) for f in feats] == SSD300_MAPS
    losses = model.loss(image, [sample])
    total = sum(sum(v) for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    with torch.no_grad():
        pred = model.predict(image, [sample])[0].pred_instances
    assert pred.bboxes.shape[-1] == 4 and len(pred.bboxes) <= 200
