"""The bbox metric of the 2D configs (what tools/test.py prints) against the official COCOeval numbers.

``coco_val2014_100`` holds 100 real COCO val2014 images' annotations, 734 fake detections and the 12
stats of ``COCOeval(COCO(gt), gt.loadRes(dt), 'bbox')`` (pycocotools).
"""
import json
from collections import defaultdict

import pytest
import torch
from mmdet.evaluation.metrics import coco_metric
from mmengine.config import Config
from mmengine.registry import init_default_scope

from perception.registry import METRICS

# mmdet's CocoMetric names the 12 COCOeval stats after its default proposal_nums (100, 300, 1000); with
# the configs' proposal_nums = (1, 10, 100) they are, in order, AR@1, AR@10, AR@100 and AR_s/m/l@100.
STAT_NAMES = ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@100', 'AR@300', 'AR@1000',
              'AR_s@1000', 'AR_m@1000', 'AR_l@1000']


@pytest.mark.parametrize('config', ['configs/ssd/ssd300_vgg16_120e_coco.py',
                                    'configs/sepc/retinanet_r50_fpn_1x_coco.py',
                                    'configs/stage_interactor/stageinteractor_r50_1x_coco.py'])
def test_config_metric_reproduces_official_cocoeval(config, shared_dir, tmp_path, monkeypatch):
    root = shared_dir / 'data' / 'coco_val2014_100'
    gt_file = root / 'instances_val2014_100.json'
    gt = json.loads(gt_file.read_text())
    detections = json.loads((root / 'instances_val2014_fakebbox100_results.json').read_text())
    expected = json.loads((root / 'expected_bbox_stats.json').read_text())

    # Keep the COCOeval that CocoMetric runs, to compare its unrounded stats too.
    runs = []

    class RecordedCOCOeval(coco_metric.COCOeval):

        def summarize(self):
            super().summarize()
            runs.append(self.stats.copy())

    monkeypatch.setattr(coco_metric, 'COCOeval', RecordedCOCOeval)

    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    evaluator = dict(cfg.test_evaluator, ann_file=str(gt_file), metric_items=STAT_NAMES,
                     outfile_prefix=str(tmp_path / 'results'))
    metric = METRICS.build(evaluator)
    categories = sorted(gt['categories'], key=lambda c: c['id'])
    metric.dataset_meta = dict(classes=tuple(c['name'] for c in categories))
    label_of = {c['id']: i for i, c in enumerate(categories)}

    per_image = defaultdict(list)
    for det in detections:
        per_image[det['image_id']].append(det)
    samples = []
    for image in gt['images']:
        dets = per_image.get(image['id'], [])
        xywh = torch.tensor([d['bbox'] for d in dets], dtype=torch.float64).reshape(-1, 4)
        bboxes = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)
        samples.append(dict(
            img_id=image['id'],
            ori_shape=(image['height'], image['width']),
            pred_instances=dict(
                bboxes=bboxes,
                scores=torch.tensor([d['score'] for d in dets], dtype=torch.float64),
                labels=torch.tensor([label_of[d['category_id']] for d in dets], dtype=torch.long))))
    metric.process({}, samples)
    results = metric.evaluate(len(samples))

    assert len(runs) == 1
    assert runs[0].tolist() == pytest.approx(expected['stats'], abs=expected['recommended_tolerance'])
    # What CocoMetric reports (and tools/test.py prints) is rounded to 3 decimals.
    for name, value in zip(STAT_NAMES, expected['stats_rounded_3']):
        assert results[f'coco/bbox_{name}'] == value, name
