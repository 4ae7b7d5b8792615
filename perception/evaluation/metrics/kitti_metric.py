"""KITTI object metric for ``tools/test.py``: the official devkit's numbers, computed on the CPU."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from perception.evaluation.kitti import (CLASSES, check_detections, flat_results, format_table, kitti_eval,
                                         read_ground_truth_file, resolve_min_overlap)
from perception.fileio.kitti import write_label_file
from perception.registry import METRICS
from perception.structures import yaw_to_alpha


def _numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def predictions_to_kitti(bboxes_3d,
                         bboxes_2d: np.ndarray,
                         scores: np.ndarray,
                         labels: np.ndarray,
                         class_names: Sequence[str],
                         image_shape: Sequence[int],
                         source: str = 'predictions',
                         alphas: Optional[np.ndarray] = None,
                         official_rows: bool = False) -> Dict[str, np.ndarray]:
    """Turn the detections of one image into KITTI result rows.

    - 2D box: the predicted one, as the official MonoDETR and MonoDGP write it, clipped to the image (pixel
      centres 0 .. W - 1 and 0 .. H - 1, as KITTI's labels are). A detection whose 3D centre is not in
      front of the camera, or whose 2D box misses the image, cannot be a KITTI object and is left out, as
      mmdet3d does.
    - alpha: the observation angle ``ry - atan2(x, z)``, wrapped to [-pi, pi).

    Args:
        bboxes_3d: mmdet3d ``CameraInstance3DBoxes`` (N, 7): x, y, z bottom centre, l, h, w, ry.
        bboxes_2d: (N, 4) 2D boxes x1, y1, x2, y2 in pixels of the original image.
        scores: (N,) scores.
        labels: (N,) indices into ``class_names``.
        class_names: the dataset's classes.
        image_shape: (H, W) of the original image.
        source: what error messages name (e.g. the frame).
        alphas: (N,) observation angles to write instead of ``ry - atan2(x, z)`` (the predicted ones), or None.
        official_rows: write every detection as predicted, unclipped and unchecked, as the official
            MonoDETR and MonoDGP testers do (the rows of an official checkpoint, ``official_decoding``).

    Returns:
        dict of arrays with the keys of :func:`perception.fileio.read_label_file` for detections
        (``dimensions`` in KITTI's order h, w, l), N' <= N rows.

    Raises:
        ValueError: a NaN or infinite value, or a negative size, naming ``source`` and the row.
    """
    boxes = _numpy(bboxes_3d.tensor)[:, :7].reshape(-1, 7)
    bbox = _numpy(bboxes_2d).reshape(-1, 4)
    if len(bbox) != len(boxes):
        raise ValueError(f'{source}: {len(boxes)} 3D boxes but {len(bbox)} 2D boxes')
    dets = {
        'name': np.array([class_names[int(i)] for i in labels], dtype=str),
        'bbox': bbox,
        'dimensions': boxes[:, [4, 5, 3]],
        'location': boxes[:, :3],
        'rotation_y': boxes[:, 6],
        'alpha': (yaw_to_alpha(boxes[:, 6], boxes[:, 0], boxes[:, 2]) if alphas is None else
                  _numpy(alphas).reshape(-1)),
        'score': np.asarray(scores, dtype=np.float64).reshape(-1),
    }
    if official_rows:
        return dets
    check_detections(dets, source, list(range(len(boxes))))
    height, width = int(image_shape[0]), int(image_shape[1])
    keep = ((boxes[:, 2] > 0) & (bbox[:, 0] < width - 1) & (bbox[:, 1] < height - 1)
            & (bbox[:, 2] > 0) & (bbox[:, 3] > 0))
    dets = {k: v[keep] for k, v in dets.items()}
    dets['bbox'] = np.clip(dets['bbox'], 0, [width - 1, height - 1, width - 1, height - 1])
    return dets


@METRICS.register_module()
class KittiMetric(BaseMetric):
    """KITTI 2D / AOS / BEV / 3D AP (R40 and R11) of monocular 3D detections, as the official devkit.

    Each data sample needs ``pred_instances_3d`` (``bboxes_3d`` a ``CameraInstance3DBoxes`` in the camera
    frame of the original image, ``scores_3d``, ``labels_3d``), ``pred_instances.bboxes`` (the same
    detections' 2D boxes in original image pixels), ``frame_id`` (the KITTI frame number) and
    ``ori_shape`` (or ``img_shape``). The ground truth is read from the ``label_2`` files of
    ``ann_dir``, DontCare rows included, so the numbers are those of
    ``tools/analysis/kitti_eval.py`` on the same frames.

    Args:
        ann_dir: the ``label_2`` folder of the evaluated frames; not needed with ``format_only``.
        iou_set: ``'strict'`` (0.7 / 0.5 / 0.5, official) or ``'loose'`` (0.5 / 0.25 / 0.25).
        classes: the classes to evaluate, a subset of Car, Pedestrian, Cyclist. Labels are mapped to
            names with the dataset's ``classes``.
        format_only: only write ``outfile_prefix/<frame>.txt`` for the KITTI server (an empty file
            for a frame without detections) and return no metric.
        outfile_prefix: where to write the result files; with ``format_only`` it is required,
            otherwise the files are written only when it is given.
        collect_device: ``'cpu'`` or ``'gpu'``, for collecting results across ranks.
        prefix: prefix of the metric names, ``kitti/Car_3D_R40_moderate``.
        official_rows: write and evaluate the detections as the official MonoDETR and MonoDGP testers do:
            every one, with its predicted alpha (``alphas_3d``), 2D boxes unclipped and sizes unchecked
            (see :func:`predictions_to_kitti`).
    """
    default_prefix = 'kitti'

    def __init__(self,
                 ann_dir: Optional[str] = None,
                 iou_set: Union[str, Dict[str, float]] = 'strict',
                 classes: Sequence[str] = CLASSES,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 official_rows: bool = False) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.official_rows = official_rows
        if format_only and outfile_prefix is None:
            raise ValueError('format_only needs outfile_prefix, the folder to write the results to')
        if not format_only and ann_dir is None:
            raise ValueError('ann_dir (the label_2 folder of the evaluated frames) is needed to evaluate')
        self.ann_dir = ann_dir
        self.classes = list(classes)
        resolve_min_overlap(iou_set, self.classes)
        self.iou_set = iou_set
        self.format_only = format_only
        self.outfile_prefix = outfile_prefix

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Convert each sample's predictions to KITTI rows and keep them with the frame id."""
        class_names = (self.dataset_meta or {}).get('classes', CLASSES)
        for sample in data_samples:
            if not isinstance(sample, dict):
                sample = sample.to_dict()
            if 'frame_id' not in sample:
                raise KeyError(f'a data sample without frame_id, the KITTI frame number (keys: {sorted(sample)}); '
                               'KittiMono3DDataset gives it and PackMono3DInputs packs it')
            frame_id = f'{int(sample["frame_id"]):06d}'
            if 'bboxes' not in sample.get('pred_instances', {}):
                raise KeyError(f'the predictions of frame {frame_id} have no 2D boxes (pred_instances.bboxes, '
                               'original image pixels), which the KITTI result rows need')
            pred = sample['pred_instances_3d']
            image_shape = sample['ori_shape'] if 'ori_shape' in sample else sample['img_shape']
            dets = predictions_to_kitti(pred['bboxes_3d'], sample['pred_instances']['bboxes'],
                                        _numpy(pred['scores_3d']), _numpy(pred['labels_3d']).astype(np.int64),
                                        class_names, image_shape, source=f'predictions of frame {frame_id}',
                                        alphas=pred.get('alphas_3d') if self.official_rows else None,
                                        official_rows=self.official_rows)
            self.results.append({'frame_id': frame_id, 'dets': dets})

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        logger = MMLogger.get_current_instance()
        if self.outfile_prefix is not None:
            os.makedirs(self.outfile_prefix, exist_ok=True)
            for result in results:
                write_label_file(osp.join(self.outfile_prefix, f'{result["frame_id"]}.txt'), result['dets'],
                                 with_score=True)
            print_log(f'{len(results)} KITTI result files written to {self.outfile_prefix}', logger=logger)
        if self.format_only:
            return {}
        gt_annos = []
        for result in results:
            path = osp.join(self.ann_dir, f'{result["frame_id"]}.txt')
            if not osp.isfile(path):
                raise FileNotFoundError(f'missing ground truth {path} for frame {result["frame_id"]}')
            gt_annos.append(read_ground_truth_file(path))
        evaluated = kitti_eval(gt_annos, [r['dets'] for r in results], classes=self.classes,
                               iou_set=self.iou_set)
        print_log('\n' + format_table(evaluated), logger=logger)
        return flat_results(evaluated)  # BaseMetric adds the prefix
