"""Video depth metrics: per-frame errors after one alignment per sequence, and the temporal alignment error.

**Per-frame metrics.** The per-image protocols of :mod:`.functional` (crop, depth range, ``'none'``,
``'median'``, ``'lsq-depth'``, ``'lsq-disparity'`` or ``'lsq-sqrt-disparity'`` scaling), except that the scale
(and shift) is fitted once, on the valid pixels of all frames of the sequence together, and applied to every
frame: a model whose scale drifts over time is penalised, as video depth papers evaluate it. AbsRel, δ1 ... of
each frame, then their mean over frames. With one frame this is :func:`.functional.evaluate_depth`.

**Temporal alignment error (TAE).** As defined by Video Depth Anything (Chen et al., "Video Depth Anything:
Consistent Depth Estimation for Super-Long Videos", CVPR 2025, Sec. 4.1; its benchmark code
``benchmark/eval/eval_tae.py``)::

    TAE = 1 / (2 (N - 1)) * sum_{k=0}^{N-2} [ AbsRel(warp(D_k, T_k->k+1), D_k+1) + AbsRel(warp(D_k+1, T_k+1->k), D_k) ]

where ``D_k`` is the predicted depth of frame k after the sequence alignment (clipped to the depth range),
``warp`` back-projects every pixel of one frame with the intrinsics, moves the points by the ground-truth
relative camera pose, projects them into the other frame and rounds them to the nearest pixel, and AbsRel
is ``mean(|D_target - D_warped| / D_target)`` over the target pixels that receive a point and have a
prediction. The ground truth enters through the alignment and the poses; a static scene is assumed (moving
objects count as inconsistency). Departures from the reference code, which does not change the values on a
scene without occlusions: where several points land in one pixel the nearest one is kept (a z-buffer, so
that the comparison is with the visible surface; the reference keeps whichever is written last); the
alignment is fitted inside the evaluation crop, the TAE is taken over the whole frame; the value is a
fraction (the reference prints it in percent).

Poses are camera-to-world (4, 4) matrices of one camera; :func:`kitti_raw_camera_poses` reads them for a
KITTI raw drive, from the ``poses.txt`` of the synthetic drives (KITTI odometry format) or from the OXTS
records (the KITTI devkit's ``convertOxtsToPose``).
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from perception.datasets.kitti_raw import load_kitti_raw_calib
from perception.fileio import InvalidInputError, read_raw_calib_file
from .functional import (SCALINGS, average_metrics, compute_depth_metrics, crop_mask, fit_nonnegative_scale_shift,
                         median_scale, resize_depth)

EARTH_RADIUS = 6378137.


# Each least-squares protocol of .functional.align_depth fits scale and shift in its own space: the map of a
# prediction (given as depth) into it, and of the ground truth.
_FIT_SPACES = {
    'lsq-depth': (lambda pred, min_depth: pred, lambda gt: gt),
    'lsq-disparity': (lambda pred, min_depth: 1. / np.maximum(pred, min_depth), lambda gt: 1. / gt),
    'lsq-sqrt-disparity': (lambda pred, min_depth: np.sqrt(1. / np.maximum(pred, min_depth)),
                           lambda gt: np.sqrt(1. / gt)),
}


def _fit_space(pred: np.ndarray, scaling: str, min_depth: float, pred_is_disparity: bool) -> np.ndarray:
    pred = np.asarray(pred, dtype=np.float64)
    return pred if pred_is_disparity else _FIT_SPACES[scaling][0](pred, min_depth)


def fit_sequence_alignment(pred_values: np.ndarray, gt_values: np.ndarray, scaling: str, min_depth: float = 1e-3,
                           pred_is_disparity: bool = False) -> Tuple[float, float]:
    """One (scale, shift) for a whole sequence.

    Args:
        pred_values, gt_values: (M,) the prediction and the ground truth (metres) at the valid pixels of all
            frames of the sequence.
        scaling: a protocol of :func:`.functional.align_depth`: ``'none'`` (1, 0), ``'median'`` (ratio of the
            medians, shift 0), or a least-squares fit of depth (``'lsq-depth'``), of inverse depth against
            1 / gt (``'lsq-disparity'``) or of its square root (``'lsq-sqrt-disparity'``).
        min_depth: a depth prediction is clipped here before its inversion.
        pred_is_disparity: the predictions already are (affine-invariant) disparities, or square-root
            disparities for ``'lsq-sqrt-disparity'``.

    Returns:
        (scale, shift) for :func:`apply_alignment`.
    """
    if scaling not in SCALINGS:
        raise ValueError(f'unknown scaling {scaling!r}, expected one of {SCALINGS}')
    if scaling not in ('none', 'median') and scaling not in _FIT_SPACES:
        raise ValueError(f'scaling {scaling!r} has no per-sequence fit here (video_metrics._FIT_SPACES)')
    if pred_is_disparity and scaling not in ('lsq-disparity', 'lsq-sqrt-disparity'):
        raise ValueError(f'a disparity prediction needs a disparity scaling, got {scaling!r}')
    if scaling == 'none':
        return 1., 0.
    if scaling == 'median':
        return median_scale(gt_values, pred_values), 0.
    gt_space = _FIT_SPACES[scaling][1](np.asarray(gt_values, dtype=np.float64))
    # A scale <= 0 becomes the constant fit (scale 0), as in .functional.align_depth.
    return fit_nonnegative_scale_shift(gt_space, _fit_space(pred_values, scaling, min_depth, pred_is_disparity),
                                       f'{scaling} of the sequence')


def apply_alignment(pred: np.ndarray, scaling: str, scale: float, shift: float, min_depth: float = 1e-3,
                    max_depth: float = 80., pred_is_disparity: bool = False) -> np.ndarray:
    """A prediction brought to metres with a fitted (scale, shift), as :func:`.functional.align_depth` applies
    its per-image fit; (H, W) float64, not yet clipped to the evaluation range."""
    if scaling in ('none', 'median', 'lsq-depth'):
        return scale * np.asarray(pred, dtype=np.float64) + shift
    aligned = scale * _fit_space(pred, scaling, min_depth, pred_is_disparity) + shift
    if scaling == 'lsq-disparity':
        return 1. / np.maximum(aligned, 1. / max_depth)
    return 1. / np.maximum(aligned, np.sqrt(1. / max_depth))**2


def warp_depth(depth: np.ndarray, src2tgt: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Depth of one frame seen from another camera pose: every pixel with a depth is back-projected, moved by
    ``src2tgt`` and projected with the same intrinsics to the nearest pixel; the nearest point wins.

    Args:
        depth: (H, W) depth in metres of the source frame; <= 0 or non-finite means no depth.
        src2tgt: (4, 4) rigid transform from the source camera frame to the target camera frame.
        intrinsics: (3, 3) pinhole intrinsics (pixel centres at integers, as KITTI's).

    Returns:
        (H, W) float64 depth in the target frame (its z), 0 where no point lands.
    """
    depth = np.asarray(depth, dtype=np.float64)
    height, width = depth.shape
    v, u = np.nonzero(np.isfinite(depth) & (depth > 0))
    z = depth[v, u]
    pixels = np.stack([u * z, v * z, z], axis=1)
    points = pixels @ np.linalg.inv(intrinsics).T
    moved = points @ src2tgt[:3, :3].T + src2tgt[:3, 3]
    front = moved[:, 2] > 0
    moved = moved[front]
    uvw = moved @ np.asarray(intrinsics, dtype=np.float64).T
    tu = np.round(uvw[:, 0] / uvw[:, 2]).astype(np.int64)
    tv = np.round(uvw[:, 1] / uvw[:, 2]).astype(np.int64)
    inside = (tu >= 0) & (tu < width) & (tv >= 0) & (tv < height)
    warped = np.full(height * width, np.inf)
    np.minimum.at(warped, tv[inside] * width + tu[inside], moved[inside, 2])
    warped[np.isinf(warped)] = 0
    return warped.reshape(height, width)


def warped_abs_rel(source: np.ndarray, target: np.ndarray, src2tgt: np.ndarray,
                   intrinsics: np.ndarray) -> Tuple[float, int]:
    """AbsRel of ``source`` warped into the target frame against ``target``, over the pixels that receive a
    point and have a target depth: (value, number of pixels); NaN when none does."""
    warped = warp_depth(source, src2tgt, intrinsics)
    target = np.asarray(target, dtype=np.float64)
    both = (warped > 0) & np.isfinite(target) & (target > 0)
    count = int(both.sum())
    if count == 0:
        return float('nan'), 0
    return float(np.mean(np.abs(target[both] - warped[both]) / target[both])), count


def tae_pair(depth_a: np.ndarray, depth_b: np.ndarray, pose_a: np.ndarray, pose_b: np.ndarray,
             intrinsics: np.ndarray) -> Dict[str, object]:
    """The two terms of one consecutive pair (a, b) in the TAE: ``forward`` (a warped into b against b) and
    ``backward`` (b warped into a against a), and their pixel ``counts``."""
    a2b = np.linalg.inv(pose_b) @ pose_a
    forward, n_forward = warped_abs_rel(depth_a, depth_b, a2b, intrinsics)
    backward, n_backward = warped_abs_rel(depth_b, depth_a, np.linalg.inv(a2b), intrinsics)
    return dict(forward=forward, backward=backward, counts=(n_forward, n_backward))


def _mean_of_pairs(pairs: List[Dict[str, object]]) -> float:
    empty = [k for k, pair in enumerate(pairs) if 0 in pair['counts']]
    if empty:
        raise ValueError(f'frame pairs {empty} (k, k + 1) share no pixel after warping: are the poses those of '
                         'the depth maps\' camera, camera-to-world?')
    return float(np.mean([[pair['forward'], pair['backward']] for pair in pairs]))


def temporal_alignment_error(depths: Sequence[np.ndarray], poses: Sequence[np.ndarray],
                             intrinsics: np.ndarray) -> Dict[str, object]:
    """TAE of a sequence of depth maps (see the module docstring).

    Args:
        depths: N >= 2 (H, W) depth maps in metres, already aligned; <= 0 means no prediction.
        poses: N (4, 4) camera-to-world poses of the same camera.
        intrinsics: (3, 3) intrinsics of the depth maps' pixels.

    Returns:
        ``tae``, the mean of the 2 (N - 1) directional AbsRels, and ``pairs``, the :func:`tae_pair` of each
        consecutive pair.
    """
    if len(depths) != len(poses):
        raise ValueError(f'{len(depths)} depth maps but {len(poses)} poses')
    if len(depths) < 2:
        raise ValueError('the temporal alignment error needs at least 2 frames')
    pairs = [tae_pair(depths[k], depths[k + 1], poses[k], poses[k + 1], intrinsics) for k in range(len(depths) - 1)]
    return dict(tae=_mean_of_pairs(pairs), pairs=pairs)


def evaluate_video_depth(preds: Sequence[np.ndarray],
                         gts: Sequence[np.ndarray],
                         poses: Optional[Sequence[np.ndarray]] = None,
                         intrinsics: Optional[np.ndarray] = None,
                         crop: str = 'garg',
                         scaling: str = 'median',
                         min_depth: float = 1e-3,
                         max_depth: float = 80.,
                         pred_is_disparity: bool = False,
                         names: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """Per-frame metrics after one alignment per sequence and, with poses, the TAE.

    The sequences are read twice, one frame (or pair) at a time, so that lazy sequences that load each frame
    from disk keep only two frames and the valid pixels of the fit in memory.

    Args:
        preds: N predicted (h, w) depth maps (or disparities); each is resized bilinearly to its ground truth.
        gts: N (H, W) ground-truth depths in metres, 0 (or outside the range) where there is none.
        poses: N (4, 4) camera-to-world poses of the camera, or None to skip the TAE.
        intrinsics: (3, 3) intrinsics of the ground truth's pixels (needed with ``poses``).
        crop, scaling, min_depth, max_depth, pred_is_disparity: the protocol of
            :func:`.functional.evaluate_depth`; ``scaling`` is fitted on the whole sequence.
        names: what error messages call each frame (its prediction file); default ``frame <k>``.

    Returns:
        The mean over frames of each of :data:`.functional.METRIC_KEYS`, ``per_frame`` (their values per frame),
        ``scale`` and ``shift`` of the alignment, ``num_frames`` and, with poses, ``tae`` and ``tae_pairs``.
    """
    if len(preds) != len(gts) or not len(gts):
        raise ValueError(f'need as many predictions as ground-truth maps, at least one: got {len(preds)} and '
                         f'{len(gts)}')
    if poses is not None and (intrinsics is None or len(poses) != len(gts)):
        raise ValueError('the TAE needs the intrinsics and one pose per frame')

    # An affine fit of depth, or of a disparity, may start from any sign; a ratio or an inversion may not.
    needs_positive = scaling != 'lsq-depth' and not pred_is_disparity

    def frame(k: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        where = names[k] if names is not None else f'frame {k}'
        gt = np.asarray(gts[k], dtype=np.float64)
        if gt.ndim != 2:
            raise InvalidInputError(f'{where}: expected an (H, W) ground truth, got shape {gt.shape}')
        pred = resize_depth(preds[k], gt.shape)
        if not np.isfinite(pred).all():
            raise InvalidInputError(f'{where}: the prediction holds NaN or infinite values')
        valid = (gt > min_depth) & (gt < max_depth) & crop_mask(*gt.shape, crop)
        if not valid.any():
            raise InvalidInputError(f'{where}: no ground-truth pixel in ({min_depth}, {max_depth}) inside the '
                                    f'{crop!r} crop')
        if needs_positive and (pred[valid] <= 0).any():
            raise InvalidInputError(f'{where}: {int((pred[valid] <= 0).sum())} predicted depths <= 0 where the '
                                    f'ground truth is valid (scaling {scaling!r} needs positive depths)')
        return pred, gt, valid

    pred_values, gt_values = [], []
    for k in range(len(gts)):
        pred, gt, valid = frame(k)
        pred_values.append(pred[valid].astype(np.float32))
        gt_values.append(gt[valid].astype(np.float32))
    scale, shift = fit_sequence_alignment(np.concatenate(pred_values), np.concatenate(gt_values), scaling,
                                          min_depth, pred_is_disparity)
    del pred_values, gt_values
    per_frame, pairs, previous = [], [], None
    for k in range(len(gts)):
        pred, gt, valid = frame(k)
        aligned = np.clip(apply_alignment(pred, scaling, scale, shift, min_depth, max_depth, pred_is_disparity),
                          min_depth, max_depth)
        per_frame.append(compute_depth_metrics(gt[valid], aligned[valid]))
        if poses is not None and previous is not None:
            pairs.append(tae_pair(previous, aligned, poses[k - 1], poses[k], intrinsics))
        previous = aligned
    result: Dict[str, object] = dict(average_metrics(per_frame))
    result.update(per_frame=per_frame, scale=scale, shift=shift, num_frames=len(gts))
    if poses is not None and len(gts) > 1:
        result.update(tae=_mean_of_pairs(pairs), tae_pairs=pairs)
    return result


def oxts_poses(records: np.ndarray) -> np.ndarray:
    """(N, 4, 4) IMU-to-world poses of OXTS records (N, >= 6: lat, lon, alt, roll, pitch, yaw), as the KITTI
    devkit's ``convertOxtsToPose``: a Mercator projection with the scale of the first record's latitude, the
    rotation Rz(yaw) Ry(pitch) Rx(roll); not normalised to the first pose."""
    records = np.asarray(records, dtype=np.float64).reshape(len(records), -1)
    lat, lon, alt, roll, pitch, yaw = records[:, :6].T
    scale = np.cos(np.deg2rad(lat[0]))
    poses = np.tile(np.eye(4), (len(records), 1, 1))
    poses[:, 0, 3] = scale * np.deg2rad(lon) * EARTH_RADIUS
    poses[:, 1, 3] = scale * EARTH_RADIUS * np.log(np.tan(np.deg2rad(90 + lat) / 2))
    poses[:, 2, 3] = alt
    for k, (r, p, y) in enumerate(zip(roll, pitch, yaw)):
        rx = np.array([[1, 0, 0], [0, np.cos(r), -np.sin(r)], [0, np.sin(r), np.cos(r)]])
        ry = np.array([[np.cos(p), 0, np.sin(p)], [0, 1, 0], [-np.sin(p), 0, np.cos(p)]])
        rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
        poses[k, :3, :3] = rz @ ry @ rx
    return poses


def _rigid(values: np.ndarray, path: str) -> np.ndarray:
    if values.size != 12:
        raise InvalidInputError(f'{path}: expected a 3x4 [R|t] (12 numbers), got {values.size}')
    pose = np.eye(4)
    pose[:3] = values.reshape(3, 4)
    return pose


def kitti_raw_camera_poses(drive_dir: str, frames: Sequence[int], cam: int = 2) -> np.ndarray:
    """Camera-to-world poses (N, 4, 4) of rectified camera ``cam`` of a KITTI raw drive at ``frames``.

    From ``<drive>/poses.txt`` when it exists (camera-0 poses, one 3x4 row-major line per frame, the KITTI
    odometry format the synthetic drives write), else from ``<drive>/oxts/data/<frame:010d>.txt`` and the
    calibration of the date folder (``calib_cam_to_cam``, ``calib_velo_to_cam``, ``calib_imu_to_velo``).
    Camera ``cam`` is camera 0 moved along x by ``-P_rect_0<cam>[0, 3] / fx``.
    """
    date_dir = osp.dirname(osp.abspath(drive_dir))
    calib = load_kitti_raw_calib(date_dir)
    P = calib.P_rect[cam]
    cam_to_rect0 = np.eye(4)
    cam_to_rect0[0, 3] = -P[0, 3] / P[0, 0]
    poses_file = osp.join(drive_dir, 'poses.txt')
    if osp.isfile(poses_file):
        rows = np.loadtxt(poses_file, ndmin=2)
        if rows.shape[1] != 12:
            raise InvalidInputError(f'{poses_file}: expected 12 numbers per line (3x4 [R|t]), got {rows.shape[1]}')
        missing = [f for f in frames if not 0 <= f < len(rows)]
        if missing:
            raise InvalidInputError(f'{poses_file}: no pose for frames {missing} (it has {len(rows)} lines)')
        return np.stack([_rigid(rows[f], poses_file) for f in frames]) @ cam_to_rect0
    records = []
    for f in frames:
        path = osp.join(drive_dir, 'oxts', 'data', f'{f:010d}.txt')
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path}: no OXTS record (and no poses.txt) for frame {f}')
        values = np.loadtxt(path, ndmin=1)
        if values.size < 6 or not np.isfinite(values[:6]).all():
            raise InvalidInputError(f'{path}: expected an OXTS record of 30 numbers, got {values.size}')
        records.append(values[:6])
    imu_path = osp.join(date_dir, 'calib_imu_to_velo.txt')
    imu = read_raw_calib_file(imu_path)
    imu_to_velo = _rigid(np.concatenate([imu['R'].reshape(3, 3), imu['T'].reshape(3, 1)], 1), imu_path)
    imu_to_rect0 = calib.R_rect @ calib.velo_to_cam @ imu_to_velo
    return oxts_poses(np.stack(records)) @ np.linalg.inv(imu_to_rect0) @ cam_to_rect0
