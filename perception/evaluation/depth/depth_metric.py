"""``DepthMetric``: the protocols of :mod:`.functional` as an mmengine metric, for ``tools/test.py``."""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from perception.fileio import InvalidInputError
from perception.registry import METRICS
from .functional import CROPS, SCALINGS, average_metrics, evaluate_depth, format_metrics_table


def _depth_map(value: Any, key: str) -> np.ndarray:
    # A map may come as a tensor, an array, or a PixelData (turned into a dict by the evaluator).
    if isinstance(value, (dict, BaseDataElement)):
        value = value['data'] if isinstance(value, dict) else value.data
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    value = np.asarray(value)
    if value.ndim == 3 and value.shape[0] == 1:
        value = value[0]
    if value.ndim != 2:
        raise ValueError(f'data sample field {key!r}: expected an (H, W) or (1, H, W) map, '
                         f'got shape {value.shape}')
    return value


@METRICS.register_module()
class DepthMetric(BaseMetric):
    """AbsRel, SqRel, RMSE, RMSE log and a1/a2/a3, averaged over images (monodepth2 convention).

    Each data sample carries the predicted depth under ``pred_key`` (at any resolution: it is resized to
    the ground truth bilinearly) and the ground-truth depth in metres under ``gt_key`` (0 = no data).
    Per-image metrics are computed in :meth:`process`, so only seven numbers per image are gathered.

    Args:
        crop: ``'garg'``, ``'eigen'`` or ``'none'``.
        scaling: ``'none'``, ``'median'``, ``'lsq-depth'`` or ``'lsq-disparity'``.
        min_depth, max_depth: evaluation range in metres.
        scale_factor: fixed factor applied to predictions first (5.4 for monodepth2-style stereo models).
        pred_is_disparity: predictions are affine-invariant disparities (needs ``'lsq-disparity'``).
        pred_key, gt_key: data-sample fields of the prediction and the ground truth.
        collect_device, prefix: as :class:`mmengine.evaluator.BaseMetric`.
    """

    default_prefix = 'depth'

    def __init__(self,
                 crop: str = 'garg',
                 scaling: str = 'median',
                 min_depth: float = 1e-3,
                 max_depth: float = 80.,
                 scale_factor: float = 1.,
                 pred_is_disparity: bool = False,
                 pred_key: str = 'pred_depth',
                 gt_key: str = 'gt_depth',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if crop not in CROPS:
            raise ValueError(f'unknown crop {crop!r}, expected one of {CROPS}')
        if scaling not in SCALINGS:
            raise ValueError(f'unknown scaling {scaling!r}, expected one of {SCALINGS}')
        self.protocol = dict(
            crop=crop,
            scaling=scaling,
            min_depth=min_depth,
            max_depth=max_depth,
            scale_factor=scale_factor,
            pred_is_disparity=pred_is_disparity)
        self.pred_key = pred_key
        self.gt_key = gt_key

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            for key in (self.pred_key, self.gt_key):
                if key not in sample:
                    raise KeyError(f'data sample without {key!r} (has {sorted(sample)})')
            pred = _depth_map(sample[self.pred_key], self.pred_key)
            gt = _depth_map(sample[self.gt_key], self.gt_key)
            try:
                self.results.append(evaluate_depth(pred, gt, **self.protocol))
            except ValueError as err:
                name = sample.get('img_path', f'sample {len(self.results)}')
                kind = InvalidInputError if isinstance(err, InvalidInputError) else ValueError
                raise kind(f'{name}: {err}') from err

    def compute_metrics(self, results: List[Dict[str, float]]) -> Dict[str, float]:
        metrics = average_metrics(results)
        print_log(
            f'depth ({len(results)} images, {self.protocol})\n{format_metrics_table(metrics)}',
            logger='current')
        return metrics
