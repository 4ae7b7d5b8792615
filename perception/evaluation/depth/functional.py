"""Depth metrics and evaluation protocols (numpy and torch only).

The metrics follow the monodepth2 convention used by self-supervised depth papers: SqRel divides the
squared error by the ground truth (the official KITTI devkit divides by its square). A protocol is:

    valid = min_depth < gt < max_depth, inside the crop
    pred *= scale_factor                      (fixed stereo scale, e.g. 5.4 for monodepth2 stereo)
    pred = scaling(pred, gt) on valid pixels  (none, per-image median, or least-squares scale and shift)
    pred = clip(pred, min_depth, max_depth)
    metrics(gt[valid], pred[valid])

and a data set's figures are the mean of the per-image metrics.

A depth prediction evaluated without scaling or with the median scale must be positive at every evaluated
pixel: a zero or negative depth has no error that means anything (an all-zero map would give NaN errors
beside a plausible a1, and a sign-flipped map a negative median scale that undoes the flip), so it raises
:class:`~perception.fileio.InvalidInputError` with the count. Under the least-squares protocols a fitted
scale <= 0 (the prediction decreases with depth, as an untrained or sign-flipped map does) is replaced by the
best fit with a non-negative scale, the constant ``mean(target)`` (scale 0), with a warning: such an image is
scored as a constant prediction, never credited for a flip the fit would undo. An aligned depth <= 0 is clipped to
``min_depth`` as the protocol says, with a warning that counts the pixels.
"""
import math
import warnings
from typing import Dict, Iterable, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from perception.fileio import InvalidInputError

ArrayLike = Union[np.ndarray, torch.Tensor]

METRIC_KEYS = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'a1', 'a2', 'a3')
CROPS = ('garg', 'eigen', 'none')
SCALINGS = ('none', 'median', 'lsq-depth', 'lsq-disparity', 'lsq-sqrt-disparity')

# (top, bottom, left, right) as fractions of the height and width, truncated to int: the crop of Garg
# et al. (ECCV 2016) and the one that reproduces Eigen et al. (NIPS 2014), as in Godard's monodepth.
_CROP_FRACTIONS = {
    'garg': (0.40810811, 0.99189189, 0.03594771, 0.96405229),
    'eigen': (0.3324324, 0.91351351, 0.0359477, 0.96405229),
}


def _as_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def crop_mask(height: int, width: int, crop: str = 'garg') -> np.ndarray:
    """Boolean (H, W) mask of the evaluation crop: ``'garg'``, ``'eigen'`` or ``'none'`` (all True)."""
    if crop not in CROPS:
        raise ValueError(f'unknown crop {crop!r}, expected one of {CROPS}')
    mask = np.zeros((height, width), dtype=bool)
    if crop == 'none':
        mask[:] = True
        return mask
    top, bottom, left, right = _CROP_FRACTIONS[crop]
    mask[int(top * height):int(bottom * height), int(left * width):int(right * width)] = True
    return mask


def compute_depth_metrics(gt: ArrayLike, pred: ArrayLike) -> Dict[str, float]:
    """Error and accuracy metrics of paired depths.

    Args:
        gt: (N,) ground-truth depths in metres, all positive.
        pred: (N,) predicted depths in metres, all positive.

    Returns:
        ``abs_rel`` mean(|gt - pred| / gt), ``sq_rel`` mean((gt - pred)^2 / gt), ``rmse`` in metres,
        ``rmse_log`` RMSE of the natural logarithms, and ``a1``/``a2``/``a3`` the fractions with
        max(gt / pred, pred / gt) < 1.25, 1.25^2, 1.25^3.
    """
    gt, pred = _as_numpy(gt).ravel(), _as_numpy(pred).ravel()
    if gt.shape != pred.shape:
        raise ValueError(f'gt has {gt.size} values but pred has {pred.size}')
    if gt.size == 0:
        raise ValueError('no valid pixel to evaluate')
    if (gt <= 0).any() or (pred <= 0).any():
        raise ValueError('depths must be positive: filter gt and clip pred before computing metrics')
    ratio = np.maximum(gt / pred, pred / gt)
    err = gt - pred
    return dict(
        abs_rel=float(np.mean(np.abs(err) / gt)),
        sq_rel=float(np.mean(err**2 / gt)),
        rmse=float(np.sqrt(np.mean(err**2))),
        rmse_log=float(np.sqrt(np.mean((np.log(gt) - np.log(pred))**2))),
        a1=float(np.mean(ratio < 1.25)),
        a2=float(np.mean(ratio < 1.25**2)),
        a3=float(np.mean(ratio < 1.25**3)))


def median_scale(gt: ArrayLike, pred: ArrayLike) -> float:
    """The per-image scale median(gt) / median(pred) of paired (N,) depths (monocular evaluation)."""
    return float(np.median(_as_numpy(gt)) / np.median(_as_numpy(pred)))


def fit_scale_shift(target: ArrayLike, source: ArrayLike) -> Tuple[float, float]:
    """Least-squares (scale, shift) of sum((scale * source + shift - target)^2) over (N,) pairs."""
    target, source = _as_numpy(target).ravel(), _as_numpy(source).ravel()
    if target.size < 2:
        raise ValueError('a scale and a shift need at least 2 valid pixels')
    design = np.stack([source, np.ones_like(source)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(design, target, rcond=None)
    return float(scale), float(shift)


def align_depth(pred: np.ndarray,
                gt: np.ndarray,
                valid: np.ndarray,
                scaling: str,
                min_depth: float = 1e-3,
                max_depth: float = 80.,
                pred_is_disparity: bool = False) -> np.ndarray:
    """Bring a prediction to the scale of the ground truth, fitted on the valid pixels only.

    Args:
        pred: (H, W) depth in metres (or up to scale), or a disparity if ``pred_is_disparity``.
        gt: (H, W) ground-truth depth in metres.
        valid: (H, W) boolean mask of the pixels the fit may use.
        scaling: ``'none'``, ``'median'`` (per-image median ratio), ``'lsq-depth'`` (least-squares scale
            and shift of the depth, the affine-invariant protocol of Marigold-style diffusion models) or
            ``'lsq-disparity'`` (least-squares scale and shift of the inverse depth against 1 / gt).
        min_depth, max_depth: the evaluation range in metres; a depth prediction is clipped at
            ``min_depth`` before inversion, an aligned disparity at 1 / ``max_depth`` before its
            inversion, so that no pixel becomes infinite or negative.
        pred_is_disparity: the prediction is an (affine-invariant) disparity, as from MiDaS-like models.

    Returns:
        (H, W) float64 depth in metres, not yet clipped to the evaluation range.
    """
    if scaling not in SCALINGS:
        raise ValueError(f'unknown scaling {scaling!r}, expected one of {SCALINGS}')
    if scaling == 'lsq-sqrt-disparity':
        return align_sqrt_disparity(pred, gt, valid, min_depth, max_depth, pred_is_disparity)
    if pred_is_disparity and scaling != 'lsq-disparity':
        raise ValueError(f'a disparity prediction needs scaling="lsq-disparity", got {scaling!r}')
    pred = _as_numpy(pred)
    if scaling == 'none':
        return pred
    if scaling == 'median':
        return pred * median_scale(gt[valid], pred[valid])
    if scaling == 'lsq-depth':
        scale, shift = fit_nonnegative_scale_shift(gt[valid], pred[valid], 'depth')
        return scale * pred + shift
    disp = pred if pred_is_disparity else 1. / np.maximum(pred, min_depth)
    scale, shift = fit_nonnegative_scale_shift(1. / gt[valid], disp[valid], 'disparity')
    return 1. / np.maximum(scale * disp + shift, 1. / max_depth)


def align_sqrt_disparity(pred: np.ndarray,
                         gt: np.ndarray,
                         valid: np.ndarray,
                         min_depth: float = 1e-3,
                         max_depth: float = 80.,
                         pred_is_sqrt_disparity: bool = False) -> np.ndarray:
    """The ``'lsq-sqrt-disparity'`` protocol (DepthMaster's ``least_square_sqrt_disp``): least-squares scale and
    shift of ``sqrt(1 / max(pred, min_depth))`` (or of ``pred`` itself when it already is a relative square-root
    disparity, as DepthMaster's raw output) against ``sqrt(1 / gt)`` on the valid pixels; the aligned value is
    clipped below at ``sqrt(1 / max_depth)`` and the depth is ``1 / aligned**2`` (H, W, float64, metres).

    The official code fits only the pixels where the raw prediction is > 0 and clips the aligned disparity at
    1e-3 (a depth of 1000); here every valid pixel is fitted and the clip is the evaluation range's.
    """
    pred = _as_numpy(pred)
    sqrt_disp = pred if pred_is_sqrt_disparity else np.sqrt(1. / np.maximum(pred, min_depth))
    scale, shift = fit_nonnegative_scale_shift(np.sqrt(1. / gt[valid]), sqrt_disp[valid], 'square-root disparity')
    return 1. / np.maximum(scale * sqrt_disp + shift, math.sqrt(1. / max_depth))**2


def fit_nonnegative_scale_shift(target: np.ndarray, source: np.ndarray, kind: str = 'depth') -> Tuple[float, float]:
    """Least-squares (scale, shift) constrained to scale >= 0: the unconstrained fit, or (0, mean(target)) when
    that fit's scale is <= 0 (the constrained optimum then lies on the boundary), with a warning."""
    scale, shift = fit_scale_shift(target, source)
    if scale > 0:
        return scale, shift
    warnings.warn(f'the least-squares scale of the prediction against the ground-truth {kind} is {scale:.4g} '
                  '(the prediction decreases where it should increase): scored as the constant fit, scale 0')
    return 0., float(np.mean(target))


def resize_depth(pred: ArrayLike, size: Sequence[int]) -> np.ndarray:
    """Bilinear resize of an (h, w) map to ``size`` = (H, W) with half-pixel centres.

    Equal to ``cv2.resize(pred, (W, H), interpolation=cv2.INTER_LINEAR)`` and to ``F.interpolate(...,
    align_corners=False)``, how depth predictions at the network resolution reach the ground truth's.
    """
    pred = torch.as_tensor(_as_numpy(pred))
    if pred.dim() != 2:
        raise ValueError(f'expected an (h, w) map, got shape {tuple(pred.shape)}')
    if tuple(pred.shape) == tuple(size):
        return pred.numpy()
    out = F.interpolate(pred[None, None], size=tuple(size), mode='bilinear', align_corners=False)
    return out[0, 0].numpy()


def evaluate_depth(pred: ArrayLike,
                   gt: ArrayLike,
                   crop: str = 'garg',
                   scaling: str = 'median',
                   min_depth: float = 1e-3,
                   max_depth: float = 80.,
                   scale_factor: float = 1.,
                   pred_is_disparity: bool = False) -> Dict[str, float]:
    """Metrics of one image under a protocol (see the module docstring).

    Args:
        pred: (h, w) predicted depth (or disparity, see :func:`align_depth`); resized bilinearly to the
            ground truth's size when it differs.
        gt: (H, W) ground-truth depth in metres, 0 (or any value outside the range) where there is none.
        crop: ``'garg'``, ``'eigen'`` or ``'none'``.
        scaling: see :func:`align_depth`.
        min_depth, max_depth: valid ground truth lies strictly inside (min_depth, max_depth); predictions
            are clipped to [min_depth, max_depth].
        scale_factor: fixed factor applied to the prediction before ``scaling`` (stereo-trained models).
        pred_is_disparity: see :func:`align_depth`.

    Returns:
        The metrics of :func:`compute_depth_metrics`.
    """
    gt = _as_numpy(gt)
    if gt.ndim != 2:
        raise ValueError(f'expected an (H, W) ground truth, got shape {gt.shape}')
    if not (math.isfinite(scale_factor) and scale_factor > 0):
        raise ValueError(f'scale_factor must be a finite number > 0, got {scale_factor}')
    pred = resize_depth(pred, gt.shape)
    if not np.isfinite(pred).all():
        raise InvalidInputError('the prediction holds NaN or infinite values')
    valid = (gt > min_depth) & (gt < max_depth) & crop_mask(*gt.shape, crop)
    if not valid.any():
        raise ValueError(f'no ground-truth pixel in ({min_depth}, {max_depth}) inside the {crop!r} crop')
    pred = pred * scale_factor
    if not pred_is_disparity and scaling in ('none', 'median'):
        nonpositive = int((pred[valid] <= 0).sum())
        if nonpositive:
            raise InvalidInputError(
                f'{nonpositive} of {int(valid.sum())} evaluated pixels of the prediction are <= 0 (smallest '
                f'{pred[valid].min():.4g}): a depth must be positive where it is evaluated')
    pred = align_depth(pred, gt, valid, scaling, min_depth, max_depth, pred_is_disparity)
    clipped = int((pred[valid] <= 0).sum())
    if clipped:
        warnings.warn(f'{clipped} of {int(valid.sum())} evaluated pixels have an aligned depth <= 0; the {scaling!r} '
                      f'protocol clips them to min_depth {min_depth}')
    pred = np.clip(pred, min_depth, max_depth)
    metrics = compute_depth_metrics(gt[valid], pred[valid])
    if not all(math.isfinite(v) for v in metrics.values()):
        raise InvalidInputError(f'non-finite metrics {metrics}')
    return metrics


def average_metrics(per_image: Iterable[Dict[str, float]]) -> Dict[str, float]:
    """Mean over images of per-image metric dicts, with the keys of :data:`METRIC_KEYS`."""
    per_image = list(per_image)
    if not per_image:
        raise ValueError('no image was evaluated')
    return {key: float(np.mean([m[key] for m in per_image])) for key in METRIC_KEYS}


def format_metrics_table(metrics: Dict[str, float]) -> str:
    """Two-line text table of :data:`METRIC_KEYS`, in the column order of the papers."""
    header = ' '.join(f'{key:>9}' for key in METRIC_KEYS)
    values = ' '.join(f'{metrics[key]:9.4f}' for key in METRIC_KEYS)
    return f'{header}\n{values}'
