import numpy as np
import pytest
import torch
from mmengine.structures import PixelData

from perception.registry import METRICS
from perception.evaluation.depth import DepthMetric


def _sample(pred, gt, as_pixel_data=False):
    if as_pixel_data:
        return dict(pred_depth=PixelData(data=torch.as_tensor(pred)[None]).to_dict(), gt_depth=gt)
    return dict(pred_depth=torch.as_tensor(pred), gt_depth=gt)


def test_depth_metric_averages_images():
    metric = METRICS.build(dict(type='DepthMetric', crop='none', scaling='none'))
    assert isinstance(metric, DepthMetric)
    gt = np.full((4, 6), 10.)
    metric.process({}, [_sample(np.full((2, 3), 8.), gt), _sample(np.full((4, 6), 10.), gt, True)])
    result = metric.evaluate(2)
    assert result['depth/abs_rel'] == pytest.approx(0.1)  # (0.2 + 0) / 2
    assert result['depth/a1'] == pytest.approx(0.5)  # a ratio of exactly 1.25 fails delta < 1.25
    assert result['depth/a2'] == pytest.approx(1.0)
    assert result['depth/rmse'] == pytest.approx(1.0)


def test_depth_metric_median_and_stereo_scale():
    gt = np.full((4, 6), 10.)
    median = DepthMetric(crop='none', scaling='median')
    median.process({}, [_sample(np.full((4, 6), 0.5), gt)])
    assert median.evaluate(1)['depth/abs_rel'] == pytest.approx(0)
    stereo = DepthMetric(crop='none', scaling='none', scale_factor=5.4)
    stereo.process({}, [_sample(np.full((4, 6), 10. / 5.4), gt)])
    assert stereo.evaluate(1)['depth/abs_rel'] == pytest.approx(0)


def test_depth_metric_errors():
    with pytest.raises(ValueError, match='unknown crop'):
        DepthMetric(crop='left')
    metric = DepthMetric(crop='none', scaling='none')
    with pytest.raises(KeyError, match='gt_depth'):
        metric.process({}, [dict(pred_depth=torch.ones(2, 2))])
    with pytest.raises(ValueError, match='frame.png.*NaN'):
        metric.process({}, [
            dict(
                pred_depth=torch.full((2, 2), float('nan')),
                gt_depth=np.ones((2, 2)),
                img_path='frame.png')
        ])
