"""nuScenes detection metric for ``tools/test.py``: the official nuscenes-devkit ``DetectionEval`` on any version.

mmdet3d 1.4's ``NuScenesMetric`` maps the version to the evaluation set with a fixed table (``v1.0-mini`` ->
``mini_val``, ``v1.0-trainval`` -> ``val``), so it fails on any other version (the synthetic world's
``v1.0-synth``). This subclass keeps its conversion of predictions to the submission format (LiDAR frame ->
ego -> global, the class range filter, attributes from class and speed) and evaluates on an explicit ``eval_set``:
a predefined split, or a custom one of ``<dataroot>/<version>/splits.json`` (the devkit's mechanism) or of
another split file. Result files are checked before the devkit reads them, so that a missing sample, a
malformed box or a NaN is an error naming the sample and the field (the devkit raises a bare ``KeyError`` or
``AssertionError``, or silently ignores a NaN velocity).
"""
import contextlib
import json
import math
import os.path as osp
import tempfile
from numbers import Real
from typing import Dict, List, Optional, Sequence, Union
from unittest import mock

import mmengine
import numpy as np
from mmdet3d.evaluation.metrics import NuScenesMetric as MMDet3DNuScenesMetric
from mmdet3d.structures import LiDARInstance3DBoxes
from mmengine.logging import MMLogger, print_log
from nuscenes import NuScenes
from nuscenes.eval.common.config import config_factory
from nuscenes.eval.detection.evaluate import DetectionEval
from nuscenes.utils.splits import get_scenes_of_split, is_predefined_split

from perception.fileio import InvalidInputError
from perception.registry import METRICS

DETECTION_NAMES = ('car', 'truck', 'bus', 'trailer', 'construction_vehicle', 'pedestrian', 'motorcycle', 'bicycle',
                   'traffic_cone', 'barrier')
ATTRIBUTE_NAMES = ('pedestrian.moving', 'pedestrian.sitting_lying_down', 'pedestrian.standing', 'cycle.with_rider',
                   'cycle.without_rider', 'vehicle.moving', 'vehicle.parked', 'vehicle.stopped')
# The evaluation set of each official version (mmdet3d's table, plus the test version).
OFFICIAL_EVAL_SETS = {'v1.0-trainval': 'val', 'v1.0-mini': 'mini_val', 'v1.0-test': 'test'}
# The suffix the devkit asserts on the version for each predefined split.
PREDEFINED_SPLIT_VERSIONS = {'train': 'trainval', 'val': 'trainval', 'train_detect': 'trainval',
                             'train_track': 'trainval', 'mini_train': 'mini', 'mini_val': 'mini', 'test': 'test'}
TP_ERROR_NAMES = {'trans_err': 'mATE', 'scale_err': 'mASE', 'orient_err': 'mAOE', 'vel_err': 'mAVE',
                  'attr_err': 'mAAE'}
# (field, length) of the numeric fields of a result box.
BOX_VECTORS = (('translation', 3), ('size', 3), ('rotation', 4), ('velocity', 2))


@contextlib.contextmanager
def custom_split_file(split_file: Optional[str]):
    """Make the devkit read custom splits from ``split_file`` instead of ``<dataroot>/<version>/splits.json``
    (the devkit reads that path through one function, ``nuscenes.utils.splits._get_custom_splits_file_path``)."""
    if split_file is None:
        yield
        return
    if not osp.isfile(split_file):
        raise FileNotFoundError(f'{split_file}: no such split file')
    with mock.patch('nuscenes.utils.splits._get_custom_splits_file_path', return_value=split_file):
        yield


def eval_set_sample_tokens(nusc, eval_set: str, split_file: Optional[str] = None) -> List[str]:
    """The sample tokens the devkit evaluates for ``eval_set``, in the ``sample`` table's order.

    Raises ValueError for a predefined split on a version it does not belong to (the devkit only asserts) and for
    a split that is not defined.
    """
    if is_predefined_split(eval_set):
        suffix = PREDEFINED_SPLIT_VERSIONS.get(eval_set)
        if suffix and not nusc.version.endswith(suffix):
            raise ValueError(f'eval_set {eval_set!r} is a predefined nuScenes split of the *{suffix} versions, not '
                             f'of {nusc.version!r}; name a split of {osp.join(nusc.dataroot, nusc.version)}/'
                             'splits.json (custom split names must differ from the predefined ones)')
    with custom_split_file(split_file):
        scenes = set(get_scenes_of_split(eval_set, nusc))
    return [s['token'] for s in nusc.sample if nusc.get('scene', s['scene_token'])['name'] in scenes]


def _check_vector(value, length: int, where: str, field: str) -> None:
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise InvalidInputError(f'{where}: field {field!r} must be a list of {length} numbers, got {value!r}')
    for v in value:
        if isinstance(v, bool) or not isinstance(v, Real):
            raise InvalidInputError(f'{where}: field {field!r} must hold numbers, got {value!r}')
        if not math.isfinite(v):
            raise InvalidInputError(f'{where}: field {field!r} must be finite, got {value!r}')


def check_results(submission, source: str, eval_tokens: Sequence[str], known_tokens: Optional[set] = None,
                  max_boxes_per_sample: int = 500) -> None:
    """Check a detection submission (``{'meta': {...}, 'results': {sample_token: [box, ...]}}``).

    Every sample of the evaluation set needs a key (an empty list when nothing was detected); keys of other
    samples of the database are allowed (the devkit ignores them on custom splits). A box needs ``sample_token``
    (its key), finite ``translation`` (3), ``size`` (3, positive), ``rotation`` (4, ``[w, x, y, z]``, non-zero),
    ``velocity`` (2, global vx, vy), a ``detection_name`` of the 10 classes, a finite ``detection_score`` and an
    ``attribute_name`` of the 8 attributes or ''.

    Args:
        submission: the parsed JSON.
        source: what the messages name (the file).
        eval_tokens: sample tokens of the evaluation set.
        known_tokens: sample tokens of the database (unknown keys are an error); None skips that check.
        max_boxes_per_sample: the devkit's limit.

    Raises:
        InvalidInputError: naming ``source``, the sample token, the box index and the field.
    """
    if not isinstance(submission, dict) or not isinstance(submission.get('results'), dict):
        raise InvalidInputError(f'{source}: expected a JSON object with "results" {{sample_token: [boxes]}} and '
                                '"meta"')
    if not isinstance(submission.get('meta'), dict):
        raise InvalidInputError(f'{source}: field "meta" (an object, e.g. {{"use_camera": true}}) is missing')
    results = submission['results']
    missing = [token for token in eval_tokens if token not in results]
    if missing:
        raise InvalidInputError(f'{source}: no results for sample {missing[0]} ({len(missing)} of the '
                                f'{len(eval_tokens)} samples of the evaluation set are missing; a sample without '
                                'detections needs an empty list)')
    for token, boxes in results.items():
        if known_tokens is not None and token not in known_tokens:
            raise InvalidInputError(f'{source}: sample {token} is not a sample of the database')
        if not isinstance(boxes, list):
            raise InvalidInputError(f'{source}: sample {token}: expected a list of boxes, got {type(boxes).__name__}')
        if len(boxes) > max_boxes_per_sample:
            raise InvalidInputError(f'{source}: sample {token}: {len(boxes)} boxes, at most {max_boxes_per_sample} '
                                    'are allowed')
        for i, box in enumerate(boxes):
            where = f'{source}: sample {token}, box {i}'
            if not isinstance(box, dict):
                raise InvalidInputError(f'{where}: expected an object, got {type(box).__name__}')
            if box.get('sample_token') != token:
                raise InvalidInputError(f'{where}: field \'sample_token\' must be {token!r}, got '
                                        f'{box.get("sample_token")!r}')
            for field, length in BOX_VECTORS:
                _check_vector(box.get(field), length, where, field)
            if min(box['size']) <= 0:
                raise InvalidInputError(f'{where}: field \'size\' must be positive, got {box["size"]!r}')
            if not any(box['rotation']):
                raise InvalidInputError(f'{where}: field \'rotation\' is the zero quaternion')
            if box.get('detection_name') not in DETECTION_NAMES:
                raise InvalidInputError(f'{where}: field \'detection_name\' must be one of {DETECTION_NAMES}, got '
                                        f'{box.get("detection_name")!r}')
            score = box.get('detection_score')
            if isinstance(score, bool) or not isinstance(score, Real) or not math.isfinite(score):
                raise InvalidInputError(f'{where}: field \'detection_score\' must be a finite number, got {score!r}')
            if box.get('attribute_name', '') not in ATTRIBUTE_NAMES + ('', ):
                raise InvalidInputError(f'{where}: field \'attribute_name\' must be one of {ATTRIBUTE_NAMES} or \'\', '
                                        f'got {box.get("attribute_name")!r}')


def load_results(path: str) -> dict:
    """Parse a result JSON file (InvalidInputError naming it when it is not JSON)."""
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise InvalidInputError(f'{path}: not a JSON file ({e})') from None


def nuscenes_evaluate(result_path: str, nusc, eval_set: str, output_dir: str,
                      config: str = 'detection_cvpr_2019', split_file: Optional[str] = None,
                      verbose: bool = False) -> dict:
    """Check a result file, then run the devkit's ``DetectionEval`` on it and print its table.

    Args:
        result_path: submission JSON.
        nusc: ``nuscenes.NuScenes`` of the database.
        eval_set: predefined split or custom split name.
        output_dir: where the devkit writes ``metrics_summary.json`` and ``metrics_details.json``.
        config: devkit configuration name.
        split_file: custom split definition (default: ``<dataroot>/<version>/splits.json``).
        verbose: the devkit's progress messages.

    Returns:
        The devkit's ``metrics_summary.json`` (``mean_ap``, ``nd_score``, ``tp_errors``, ``label_aps`` with string
        distance keys, ...).
    """
    cfg = config_factory(config)
    eval_tokens = eval_set_sample_tokens(nusc, eval_set, split_file)
    check_results(load_results(result_path), result_path, eval_tokens, {s['token'] for s in nusc.sample},
                  cfg.max_boxes_per_sample)
    with custom_split_file(split_file):
        evaluator = DetectionEval(nusc, cfg, result_path, eval_set=eval_set, output_dir=output_dir, verbose=verbose)
    evaluator.main(plot_examples=0, render_curves=False)
    with open(osp.join(output_dir, 'metrics_summary.json')) as f:
        return json.load(f)


def flatten_summary(summary: dict, prefix: str) -> Dict[str, float]:
    """The metrics of a devkit summary as flat ``{prefix}/name`` keys: mAP, NDS, mATE..mAAE, per class AP (mean and
    at each distance) and TP errors."""
    metrics = {f'{prefix}/mAP': summary['mean_ap'], f'{prefix}/NDS': summary['nd_score']}
    for name, value in summary['tp_errors'].items():
        metrics[f'{prefix}/{TP_ERROR_NAMES[name]}'] = value
    for cls, ap in summary['mean_dist_aps'].items():
        metrics[f'{prefix}/{cls}_AP'] = ap
        for dist, value in summary['label_aps'][cls].items():
            metrics[f'{prefix}/{cls}_AP_dist_{dist}'] = value
        for name, value in summary['label_tp_errors'][cls].items():
            metrics[f'{prefix}/{cls}_{name}'] = value
    return metrics


@METRICS.register_module()
class NuScenesMetric(MMDet3DNuScenesMetric):
    """nuScenes detection metric (mAP, NDS, TP errors) of 3D boxes in the LiDAR or ego frame, on any version.

    Args:
        data_root: the devkit's ``dataroot``.
        ann_file: the info file of the evaluated samples (its ``ego2global`` and ``lidar2ego`` move the
            predictions to the global frame; its ``metainfo`` gives the default ``version`` and ``eval_set``).
        version: table folder name; default: the info file's ``metainfo['version']``.
        eval_set: devkit split to evaluate on; default: the info file's ``metainfo['split']``, else the official
            evaluation set of the version (``val``, ``mini_val``).
        split_file: custom split definition; default ``<dataroot>/<version>/splits.json``.
        box_frame: 'lidar' (mmdet3d, StreamPETR) or 'ego': the frame of the predicted boxes.
        format_only: only write ``<outfile_prefix>/results_nusc.json`` (for the evaluation server).
        outfile_prefix: folder of ``results_nusc.json`` and the devkit's outputs (a temporary one by default).
        metric, modality, prefix, eval_version, collect_device, backend_args: as mmdet3d's ``NuScenesMetric``;
            ``modality`` is the submission's ``meta``.
    """

    def __init__(self,
                 data_root: str,
                 ann_file: str,
                 version: Optional[str] = None,
                 eval_set: Optional[str] = None,
                 split_file: Optional[str] = None,
                 box_frame: str = 'lidar',
                 metric: Union[str, List[str]] = 'bbox',
                 modality: dict = dict(use_camera=True, use_lidar=False),
                 prefix: Optional[str] = None,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 eval_version: str = 'detection_cvpr_2019',
                 collect_device: str = 'cpu',
                 backend_args: Optional[dict] = None) -> None:
        if box_frame not in ('lidar', 'ego'):
            raise ValueError(f"box_frame must be 'lidar' or 'ego', got {box_frame!r}")
        if format_only and outfile_prefix is None:
            raise ValueError('format_only needs outfile_prefix: the folder to write results_nusc.json to')
        super().__init__(data_root, ann_file, metric=metric, modality=modality, prefix=prefix,
                         format_only=format_only, jsonfile_prefix=outfile_prefix, eval_version=eval_version,
                         collect_device=collect_device, backend_args=backend_args)
        self.version_override = version
        self.eval_set = eval_set
        self.split_file = split_file
        self.box_frame = box_frame

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep the 3D predictions and the sample index (mmdet3d's also requires 2D ones)."""
        for data_sample in data_samples:
            pred = data_sample['pred_instances_3d']
            self.results.append(dict(pred_instances_3d={k: v.to('cpu') for k, v in pred.items()},
                                     sample_idx=data_sample['sample_idx']))

    def _resolve(self, metainfo: dict) -> None:
        self.version = self.version_override or metainfo.get('version') or self.dataset_meta.get('version')
        if self.version is None:
            raise ValueError(f'{self.ann_file}: no version in metainfo; pass version= to NuScenesMetric')
        eval_set = self.eval_set or metainfo.get('split') or OFFICIAL_EVAL_SETS.get(self.version)
        if eval_set is None:
            raise ValueError(f'{self.ann_file}: no split in metainfo and version {self.version!r} has no official '
                             'evaluation set; pass eval_set= to NuScenesMetric')
        self.resolved_eval_set = eval_set

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        infos = mmengine.load(self.ann_file, backend_args=self.backend_args)
        self._resolve(infos.get('metainfo', {}))
        self.data_infos = infos['data_list']
        if self.box_frame == 'ego':
            self.data_infos = [dict(info, lidar_points=dict(info['lidar_points'], lidar2ego=np.eye(4).tolist()))
                               for info in self.data_infos]
        tmp_dir = None
        out_dir = self.jsonfile_prefix
        if out_dir is None:
            tmp_dir = tempfile.TemporaryDirectory()
            out_dir = tmp_dir.name
        try:
            result_path = self.format_results(results, self.dataset_meta['classes'], out_dir)
            if self.format_only:
                logger.info(f'nuScenes results written to {result_path}')
                return {}
            nusc = NuScenes(version=self.version, dataroot=self.data_root, verbose=False)
            print_log(f'nuScenes evaluation of {len(results)} samples on {self.version} / {self.resolved_eval_set}',
                      logger)
            summary = nuscenes_evaluate(result_path, nusc, self.resolved_eval_set, osp.dirname(result_path),
                                        self.eval_version, self.split_file)
        finally:
            if tmp_dir is not None:
                tmp_dir.cleanup()
        return flatten_summary(summary, 'pred_instances_3d_NuScenes')

    def format_results(self, results: List[dict], classes: Sequence[str], out_dir: str) -> str:
        """Write the predictions as ``out_dir/results_nusc.json`` in the official submission format."""
        boxes = results[0]['pred_instances_3d']['bboxes_3d'] if results else None
        if boxes is not None and not isinstance(boxes, LiDARInstance3DBoxes):
            raise TypeError(f'NuScenesMetric expects LiDARInstance3DBoxes predictions, got {type(boxes).__name__}')
        return self._format_lidar_bbox([r['pred_instances_3d'] for r in results],
                                       [r['sample_idx'] for r in results], classes, out_dir)
