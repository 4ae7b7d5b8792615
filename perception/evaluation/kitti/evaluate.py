"""The KITTI object evaluation protocol of the official C++ devkit (``evaluate_object.cpp``), in float64.

It reproduces the devkit's precision curves value for value, quirks included:

- GT of class c is *valid* if it passes the difficulty limits (height > 40/25/25 px, occlusion
  <= 0/1/2, truncation <= 0.15/0.30/0.50), *ignored* if it is a neighbour class (Van for Car,
  Person_sitting for Pedestrian) or fails a limit, and *not considered* otherwise.
- A detection lower than 40/25/25 px (``int(|y2 - y1|)``) is ignored whatever its class: never a false
  positive, but it can absorb a GT. Otherwise only detections of class c take part.
- A match needs an overlap strictly above the threshold. The recall thresholds come from a first pass
  that gives each GT its highest-scoring candidate; the counting pass at each threshold gives it the
  best-overlapping one (a too-short detection only when there is no other).
- Detections inside a DontCare area (intersection over the detection's area, with the metric's own
  overlap) are not false positives; DontCare rows have no 3D box, so this only excuses 2D detections.
- ``precision[i]`` belongs to the i-th threshold (not to recall i/40), then becomes ``max(p[i:])``.
  R40 averages ``p[1:41]``, R11 ``p[0:41:4]``.
- A class is evaluated for a metric only if some detection of it has a usable box for that metric;
  AOS only if no detection in the set has ``alpha == -10``.
"""
import math
from typing import Dict, Sequence, Union

import numpy as np

from .jit import njit
from .overlaps import bev_overlap, box3d_overlap, image_overlap

CLASSES = ('Car', 'Pedestrian', 'Cyclist')
METRICS = ('bbox', 'aos', 'bev', '3d')
DIFFICULTIES = ('easy', 'moderate', 'hard')
DIFFICULTY_LIMITS = {
    'easy': {'min_height_px': 40, 'max_occlusion': 0, 'max_truncation': 0.15},
    'moderate': {'min_height_px': 25, 'max_occlusion': 1, 'max_truncation': 0.3},
    'hard': {'min_height_px': 25, 'max_occlusion': 2, 'max_truncation': 0.5},
}
# GT classes that are neither valid nor false-positive material for a class.
NEIGHBOUR_CLASSES = {'Car': 'Van', 'Pedestrian': 'Person_sitting', 'Cyclist': None}
# Minimum overlaps per class, the same for every metric. 'strict' is the official benchmark; 'loose' is
# the second set that papers report (mmdet3d's "AP@0.50, 0.25, 0.25" line keeps 0.7/0.5/0.5 for the 2D
# box, so its bbox values equal the strict ones here).
MIN_OVERLAPS = {
    'strict': {'Car': 0.7, 'Pedestrian': 0.5, 'Cyclist': 0.5},
    'loose': {'Car': 0.5, 'Pedestrian': 0.25, 'Cyclist': 0.25},
}
N_SAMPLE_PTS = 41
_NO_DETECTION = -10000000.0
_KINDS = {'bbox': 0, 'bev': 1, '3d': 2}


@njit
def _frame_overlaps(det_off, gt_off, det_bbox, gt_bbox, det_box3d, gt_box3d, pair_off):
    """IoU and IoF (intersection over the detection) of every det/GT pair of every frame.

    Returns two (3, P) arrays, rows bbox/bev/3d; frame f's (n_det, n_gt) block, row-major, starts at
    ``pair_off[f]``.
    """
    iou = np.zeros((3, pair_off[-1]))
    iof = np.zeros((3, pair_off[-1]))
    for f in range(len(det_off) - 1):
        n_gt = gt_off[f + 1] - gt_off[f]
        for j in range(det_off[f], det_off[f + 1]):
            for i in range(gt_off[f], gt_off[f + 1]):
                p = pair_off[f] + (j - det_off[f]) * n_gt + (i - gt_off[f])
                iou[0, p] = image_overlap(det_bbox[j], gt_bbox[i], False)
                iof[0, p] = image_overlap(det_bbox[j], gt_bbox[i], True)
                iou[1, p] = bev_overlap(det_box3d[j], gt_box3d[i], False)
                iof[1, p] = bev_overlap(det_box3d[j], gt_box3d[i], True)
                iou[2, p] = box3d_overlap(det_box3d[j], gt_box3d[i], False)
                iof[2, p] = box3d_overlap(det_box3d[j], gt_box3d[i], True)
    return iou, iof


@njit
def _thresholds(scores, n_gt):
    """The devkit's score thresholds that sample recall in steps of 1/40 (``getThresholds``)."""
    v = -np.sort(-scores)
    out = np.empty(len(v))
    n = 0
    current_recall = 0.0
    for i in range(len(v)):
        l_recall = (i + 1) / n_gt
        r_recall = (i + 2) / n_gt if i < len(v) - 1 else l_recall
        if (r_recall - current_recall) < (current_recall - l_recall) and i < len(v) - 1:
            continue
        out[n] = v[i]
        n += 1
        current_recall += 1.0 / (N_SAMPLE_PTS - 1.0)
    return out[:n]


@njit
def _match_frame(f, det_off, gt_off, pair_off, iou, iof, gt_state, gt_dontcare, det_state, score,
                 gt_alpha, det_alpha, min_overlap, thresh, counting, tp_scores, n_tp):
    """One frame of the devkit's ``computeStatistics``.

    ``counting`` False is the first pass: the TP scores are written to ``tp_scores[n_tp:]`` and
    (tp, 0, 0.) is returned. True is the counting pass at score ``thresh``: returns (tp, fp, similarity), with
    similarity -1 when the frame has neither TP nor FP (the devkit then skips it).
    """
    d0 = det_off[f]
    n_det = det_off[f + 1] - d0
    n_gt = gt_off[f + 1] - gt_off[f]
    assigned = np.zeros(n_det, dtype=np.bool_)
    tp = 0
    similarity = 0.0
    for gi in range(n_gt):
        g = gt_off[f] + gi
        if gt_state[g] == -1:
            continue
        det_idx = -1
        best_score = _NO_DETECTION
        max_overlap = 0.0
        assigned_short = False
        for dj in range(n_det):
            d = d0 + dj
            if det_state[d] == -1 or assigned[dj] or (counting and score[d] < thresh):
                continue
            overlap = iou[pair_off[f] + dj * n_gt + gi]
            if not overlap > min_overlap:
                continue
            if not counting:
                if score[d] > best_score:
                    det_idx = dj
                    best_score = score[d]
            elif det_state[d] == 0 and (overlap > max_overlap or assigned_short):
                max_overlap = overlap
                det_idx = dj
                assigned_short = False
            elif det_state[d] == 1 and det_idx == -1:
                det_idx = dj
                assigned_short = True
        if det_idx == -1:
            continue
        assigned[det_idx] = True
        if gt_state[g] == 0 and det_state[d0 + det_idx] == 0:
            if not counting:
                tp_scores[n_tp + tp] = score[d0 + det_idx]
            else:
                similarity += (1.0 + math.cos(gt_alpha[g] - det_alpha[d0 + det_idx])) / 2.0
            tp += 1
    if not counting:
        return tp, 0, 0.0
    fp = 0
    for dj in range(n_det):
        if not assigned[dj] and det_state[d0 + dj] == 0 and score[d0 + dj] >= thresh:
            fp += 1
    for gi in range(n_gt):
        if not gt_dontcare[gt_off[f] + gi]:
            continue
        for dj in range(n_det):
            d = d0 + dj
            if assigned[dj] or det_state[d] != 0 or score[d] < thresh:
                continue
            if iof[pair_off[f] + dj * n_gt + gi] > min_overlap:
                assigned[dj] = True
                fp -= 1
    if tp == 0 and fp == 0:
        similarity = -1.0
    return tp, fp, similarity


@njit
def _eval_class(det_off, gt_off, pair_off, iou, iof, gt_state, gt_dontcare, det_state, score,
                gt_alpha, det_alpha, min_overlap, compute_aos):
    """The devkit's ``eval_class`` for one class, metric and difficulty: (41,) precision and AOS."""
    n_frames = len(det_off) - 1
    n_gt = 0
    for g in range(len(gt_state)):
        if gt_state[g] == 0:
            n_gt += 1
    tp_scores = np.empty(len(gt_state))
    n_tp = 0
    # Frames without a detection that takes part give neither TP nor FP in any pass.
    frame_top = np.full(n_frames, -np.inf)
    for f in range(n_frames):
        for d in range(det_off[f], det_off[f + 1]):
            if det_state[d] == 0 and score[d] > frame_top[f]:
                frame_top[f] = score[d]
    for f in range(n_frames):
        if frame_top[f] == -np.inf:
            continue
        tp, _, _ = _match_frame(f, det_off, gt_off, pair_off, iou, iof, gt_state, gt_dontcare,
                                det_state, score, gt_alpha, det_alpha, min_overlap, 0.0, False,
                                tp_scores, n_tp)
        n_tp += tp
    thresholds = _thresholds(tp_scores[:n_tp].copy(), n_gt)
    precision = np.zeros(N_SAMPLE_PTS)
    aos = np.zeros(N_SAMPLE_PTS)
    for t in range(min(len(thresholds), N_SAMPLE_PTS)):
        tp_sum = 0
        fp_sum = 0
        similarity_sum = 0.0
        for f in range(n_frames):
            if frame_top[f] < thresholds[t]:
                continue
            tp, fp, similarity = _match_frame(f, det_off, gt_off, pair_off, iou, iof, gt_state,
                                              gt_dontcare, det_state, score, gt_alpha, det_alpha,
                                              min_overlap, thresholds[t], True, tp_scores, 0)
            tp_sum += tp
            fp_sum += fp
            if similarity != -1.0:
                similarity_sum += similarity
        if tp_sum + fp_sum > 0:
            precision[t] = tp_sum / (tp_sum + fp_sum)
            aos[t] = similarity_sum / (tp_sum + fp_sum)
        else:
            precision[t] = np.nan
            aos[t] = np.nan
    # std::max_element over p[i:]: a NaN at i stays, NaNs further on are skipped.
    for t in range(min(len(thresholds), N_SAMPLE_PTS)):
        for k in range(t + 1, N_SAMPLE_PTS):
            if precision[t] < precision[k]:
                precision[t] = precision[k]
            if aos[t] < aos[k]:
                aos[t] = aos[k]
    if not compute_aos:
        aos[:] = 0.0
    return precision, aos


def ap_from_precision(precision: np.ndarray) -> Dict[str, float]:
    """R40 and R11 AP (percent) from the devkit's 41 precision values."""
    precision = np.asarray(precision, dtype=np.float64)
    return {
        'R40': float(precision[1:].sum() / 40 * 100),
        'R11': float(precision[0::4].sum() / 11 * 100),
    }


def _concat(annos, key, width, dtype=np.float64):
    parts = [np.asarray(a[key], dtype=dtype).reshape(-1, width) for a in annos]
    return np.concatenate(parts) if parts else np.zeros((0, width), dtype)


def _names(annos):
    """Lower-case class names of all frames: the devkit compares them with ``strcasecmp``."""
    return np.char.lower(np.concatenate([np.asarray(a['name'], dtype=str) for a in annos] + [np.zeros(0, str)]))


def label_camera_boxes(annos):
    """(N, 7) x, y, z, l, h, w, ry of the rows of a list of label dicts (``read_label_file``; dimensions in
    the file's order h, w, l), concatenated."""
    dims = _concat(annos, 'dimensions', 3)
    return np.concatenate([
        _concat(annos, 'location', 3), dims[:, [2, 0, 1]],
        _concat(annos, 'rotation_y', 1)
    ], axis=1)


def _offsets(annos):
    return np.concatenate([[0], np.cumsum([len(a['name']) for a in annos])]).astype(np.int64)


def resolve_min_overlap(iou_set: Union[str, Dict[str, float]], classes: Sequence[str]) -> Dict[str, float]:
    """Per-class minimum overlap from a set name (``'strict'``, ``'loose'``) or a ``{class: value}``."""
    if isinstance(iou_set, str):
        if iou_set not in MIN_OVERLAPS:
            raise ValueError(f'unknown IoU set {iou_set!r}, expected one of {list(MIN_OVERLAPS)}')
        iou_set = MIN_OVERLAPS[iou_set]
    missing = [c for c in classes if c not in iou_set]
    if missing:
        raise ValueError(f'no minimum overlap for {missing}')
    return {c: float(iou_set[c]) for c in classes}


def kitti_eval(gt_annos: Sequence[Dict[str, np.ndarray]],
               dt_annos: Sequence[Dict[str, np.ndarray]],
               classes: Sequence[str] = CLASSES,
               iou_set: Union[str, Dict[str, float]] = 'strict') -> Dict:
    """Evaluate detections against ground truth with the official KITTI protocol.

    Args:
        gt_annos: one label dict per frame, as :func:`perception.fileio.read_label_file` returns them
            (``name``, ``truncated``, ``occluded``, ``alpha``, ``bbox``, ``dimensions`` h, w, l,
            ``location``, ``rotation_y``), DontCare rows included.
        dt_annos: one dict per frame, same order, with the same keys but ``truncated`` and
            ``occluded``, plus ``score`` (N,).
        classes: a subset of ``CLASSES``.
        iou_set: ``'strict'`` (0.7 / 0.5 / 0.5), ``'loose'`` (0.5 / 0.25 / 0.25) or ``{class: value}``.

    Returns:
        dict with the schema of the oracle's ``expected.json``: ``results[class][metric]`` is
        ``{'R40': {difficulty: AP}, 'R11': {...}}`` in percent, or None when the devkit would not
        evaluate it; ``precision[class][metric][difficulty]`` the 41 values of the evaluated ones;
        ``evaluated``, ``compute_aos``, ``min_overlap``, ``difficulty`` and ``num_frames``.
    """
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise ValueError(f'the KITTI protocol defines {list(CLASSES)}, got {unknown}')
    if len(gt_annos) != len(dt_annos):
        raise ValueError(f'{len(gt_annos)} ground-truth frames but {len(dt_annos)} detection frames')
    min_overlap = resolve_min_overlap(iou_set, classes)

    gt_off, det_off = _offsets(gt_annos), _offsets(dt_annos)
    pair_off = np.concatenate([[0], np.cumsum(np.diff(gt_off) * np.diff(det_off))]).astype(np.int64)
    gt_name, det_name = _names(gt_annos), _names(dt_annos)
    gt_bbox, det_bbox = _concat(gt_annos, 'bbox', 4), _concat(dt_annos, 'bbox', 4)
    gt_box3d, det_box3d = label_camera_boxes(gt_annos), label_camera_boxes(dt_annos)
    gt_alpha, det_alpha = _concat(gt_annos, 'alpha', 1)[:, 0], _concat(dt_annos, 'alpha', 1)[:, 0]
    score = _concat(dt_annos, 'score', 1)[:, 0]
    truncated = _concat(gt_annos, 'truncated', 1)[:, 0]
    occluded = _concat(gt_annos, 'occluded', 1, np.int64)[:, 0]
    gt_height = gt_bbox[:, 3] - gt_bbox[:, 1]
    det_height = np.trunc(np.abs(det_bbox[:, 1] - det_bbox[:, 3]))
    gt_dontcare = gt_name == 'dontcare'

    iou, iof = _frame_overlaps(det_off, gt_off, det_bbox, gt_bbox, det_box3d, gt_box3d, pair_off)
    compute_aos = not bool(np.any(det_alpha == -10))

    out = {
        'num_frames': len(gt_annos),
        'min_overlap': min_overlap,
        'difficulty': {d: dict(DIFFICULTY_LIMITS[d]) for d in DIFFICULTIES},
        'compute_aos': compute_aos,
        'evaluated': {},
        'results': {},
        'precision': {},
    }
    x, y, z, l, h, w = (det_box3d[:, k] for k in range(6))
    for cls in classes:
        is_cls = det_name == cls.lower()
        ground = is_cls & (x != -1000) & (z != -1000) & (w > 0) & (l > 0)
        evaluated = {
            'bbox': bool(np.any(is_cls & (det_bbox[:, 0] >= 0))),
            'bev': bool(np.any(ground)),
            '3d': bool(np.any(ground & (y != -1000) & (h > 0))),
        }
        evaluated['aos'] = evaluated['bbox'] and compute_aos
        evaluated = {m: evaluated[m] for m in METRICS}
        out['evaluated'][cls] = evaluated
        curves = {m: {} for m in METRICS if evaluated[m]}
        neighbour = (NEIGHBOUR_CLASSES[cls] or '').lower()
        for difficulty in DIFFICULTIES:
            limits = DIFFICULTY_LIMITS[difficulty]
            passes = ((occluded <= limits['max_occlusion'])
                      & (truncated <= limits['max_truncation'])
                      & (gt_height > limits['min_height_px']))
            gt_is_cls = gt_name == cls.lower()
            gt_state = np.where(gt_is_cls & passes, 0,
                                np.where(gt_is_cls | (gt_name == neighbour), 1, -1)).astype(np.int8)
            det_state = np.where(det_height < limits['min_height_px'], 1,
                                 np.where(is_cls, 0, -1)).astype(np.int8)
            for metric in ('bbox', 'bev', '3d'):
                if not evaluated[metric]:
                    continue
                kind = _KINDS[metric]
                with_aos = metric == 'bbox' and compute_aos
                precision, aos = _eval_class(det_off, gt_off, pair_off, iou[kind], iof[kind],
                                             gt_state, gt_dontcare, det_state, score, gt_alpha,
                                             det_alpha, min_overlap[cls], with_aos)
                curves[metric][difficulty] = precision
                if with_aos:
                    curves['aos'][difficulty] = aos
        out['results'][cls] = {
            m: ({
                r: {d: ap_from_precision(curves[m][d])[r]
                    for d in DIFFICULTIES}
                for r in ('R40', 'R11')
            } if evaluated[m] else None)
            for m in METRICS
        }
        if curves:
            out['precision'][cls] = {
                m: {d: curves[m][d].tolist()
                    for d in DIFFICULTIES}
                for m in curves
            }
    return out
