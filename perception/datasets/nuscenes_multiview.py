"""Multi-view nuScenes dataset for camera detectors, streaming (temporal) ones included.

Reads the info files of :mod:`perception.datasets.converters.nuscenes_converter` (or mmdet3d's, which lack the
temporal keys only). On top of mmdet3d's ``NuScenesDataset`` (LiDAR-frame boxes with velocity, its label
mapping and filters) each sample gets the 6 cameras' matrices as float64 arrays, the per-view 2D labels of
``cam_instances``, and its place in time:

* samples sorted by scene, then timestamp, so consecutive indices are consecutive keyframes of a scene;
* ``seq_split_num`` splits each scene into that many consecutive runs (``flag``, one group per run) for
  streaming training as StreamPETR does (``StreamBatchSampler`` walks each batch slot through a run in order);
  ``prev_exists`` is False on the first sample of a run (in test mode: of a scene), when a detector must reset
  its memory;
* ``queue_length > 1`` (sliding-window training) makes an item the list of the pipeline outputs of the last
  ``queue_length`` samples of the run, oldest first, the first sample repeated at the start of a run.

The ego motion between two samples is ``inv(lidar2global_t) @ lidar2global_s`` (LiDAR frame of s -> LiDAR frame
of t); the transforms keep ``lidar2global`` exact through the BEV augmentation, so the motion computed from two
augmented samples maps the augmented frames onto each other.
"""
import itertools
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
import torch
from mmdet3d.datasets import NuScenesDataset
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from perception.registry import DATA_SAMPLERS, DATASETS

CAMERAS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')
DATA_PREFIX = dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP', **{cam: f'samples/{cam}' for cam in CAMERAS})


def _matrix(value, size: int = 4) -> np.ndarray:
    """A (size, size) float64 array of a nested list; a 3x3 ``cam2img`` is padded to 4x4 with the identity."""
    array = np.asarray(value, dtype=np.float64)
    out = np.eye(size)
    out[:array.shape[0], :array.shape[1]] = array
    return out


def split_sequences(scene_ids: np.ndarray, seq_split_num: int) -> np.ndarray:
    """Group id of each sample: scene ``s`` (runs of equal consecutive ids) cut into ``seq_split_num`` runs of
    ``ceil(len / seq_split_num)`` samples (the last one shorter), as StreamPETR's ``_set_sequence_group_flag``."""
    flags, group, start = np.empty(len(scene_ids), dtype=np.int64), 0, 0
    while start < len(scene_ids):
        end = start
        while end < len(scene_ids) and scene_ids[end] == scene_ids[start]:
            end += 1
        chunk = -(-(end - start) // seq_split_num)
        for offset in range(start, end, chunk):
            flags[offset:min(offset + chunk, end)] = group
            group += 1
        start = end
    return flags


@DATASETS.register_module()
class NuScenesMultiViewDataset(NuScenesDataset):
    """nuScenes samples with 6 cameras, exact matrices and temporal order (see the module docstring).

    Args:
        data_root: the devkit's ``dataroot``.
        ann_file: info file.
        pipeline: transforms (``LoadMultiViewImages`` first).
        cameras: the views, in the order of the stacked images.
        seq_split_num: runs per scene for streaming training (1: a run is a scene).
        queue_length: samples per item in training (1: one sample; > 1: the last ``queue_length`` of the run).
        with_2d: parse the per-view 2D labels of ``cam_instances`` (2D boxes, projected centres, depths).
        data_prefix: folders of the files, per camera and for the LiDAR (``pts``) and sweeps.
        modality, box_type_3d, filter_empty_gt, test_mode, **kwargs: as mmdet3d's ``NuScenesDataset``.
            ``filter_empty_gt`` defaults to False: dropping samples would break the runs.
    """
    # No 'version' here: the info file's metainfo gives it (mmdet3d's class default would shadow it).
    METAINFO = dict(classes=NuScenesDataset.METAINFO['classes'], palette=NuScenesDataset.METAINFO['palette'])

    def __init__(self,
                 data_root: str,
                 ann_file: str,
                 pipeline: List[Union[dict, Callable]] = [],
                 cameras: Sequence[str] = CAMERAS,
                 seq_split_num: int = 1,
                 queue_length: int = 1,
                 with_2d: bool = True,
                 data_prefix: dict = DATA_PREFIX,
                 modality: dict = dict(use_camera=True, use_lidar=False),
                 box_type_3d: str = 'LiDAR',
                 filter_empty_gt: bool = False,
                 test_mode: bool = False,
                 **kwargs) -> None:
        if seq_split_num < 1 or queue_length < 1:
            raise ValueError(f'seq_split_num and queue_length must be >= 1, got {seq_split_num}, {queue_length}')
        self.cameras = tuple(cameras)
        self.seq_split_num = seq_split_num
        self.queue_length = queue_length
        self.with_2d = with_2d
        super().__init__(data_root=data_root, ann_file=ann_file, pipeline=pipeline, box_type_3d=box_type_3d,
                         modality=modality, filter_empty_gt=filter_empty_gt, test_mode=test_mode,
                         data_prefix=dict(data_prefix), **kwargs)

    def load_data_list(self) -> List[dict]:
        """Parse the infos, sort them by scene and time, and set the run of each sample (``flag``)."""
        data_list = super().load_data_list()
        for info in data_list:
            if 'scene_token' not in info:
                raise KeyError(f'{self.ann_file}: sample {info.get("token")} has no scene_token; write the info '
                               'file with tools/create_data.py nuscenes')
        first_seen = {}
        for info in data_list:
            first_seen.setdefault(info['scene_token'], len(first_seen))
        data_list.sort(key=lambda info: (first_seen[info['scene_token']], info['timestamp']))
        scene_ids = np.array([first_seen[info['scene_token']] for info in data_list])
        self.flag = split_sequences(scene_ids, 1 if self.test_mode else self.seq_split_num)
        for idx, info in enumerate(data_list):
            info['prev_exists'] = bool(idx > 0 and self.flag[idx - 1] == self.flag[idx])
        return data_list

    def parse_data_info(self, info: dict) -> dict:
        """mmdet3d's parsing, then the views' matrices (V, 4, 4) float64 in ``cameras`` order and their 2D labels."""
        missing = [cam for cam in self.cameras if cam not in info['images']]
        if missing:
            raise KeyError(f'{self.ann_file}: sample {info["token"]} has no camera(s) {missing}')
        info['images'] = {cam: info['images'][cam] for cam in self.cameras}
        cam_instances = info.pop('cam_instances', None)
        info = super().parse_data_info(info)
        images = [info['images'][cam] for cam in self.cameras]
        info['lidar2ego'] = _matrix(info['lidar_points']['lidar2ego'])
        info['ego2global'] = _matrix(info['ego2global'])
        info['lidar2global'] = info['ego2global'] @ info['lidar2ego']
        info['img_path'] = [img['img_path'] for img in images]
        info['cam2img'] = np.stack([_matrix(img['cam2img']) for img in images])
        info['lidar2cam'] = np.stack([_matrix(img['lidar2cam']) for img in images])
        info['lidar2img'] = info['cam2img'] @ info['lidar2cam']
        info['cam2ego'] = np.stack([_matrix(img['cam2ego']) for img in images])
        info['img_timestamp'] = np.array([img['timestamp'] for img in images])
        if self.with_2d and cam_instances is not None:
            info['cam_ann_info'] = [self._parse_cam_instances(cam_instances.get(cam, [])) for cam in self.cameras]
        return info

    def _parse_cam_instances(self, instances: List[dict]) -> dict:
        """2D labels of one view: ``gt_bboxes`` (n, 4) pixels, ``gt_bboxes_labels`` (n,), ``centers_2d`` (n, 2)
        pixels, ``depths`` (n,) metres; instances whose class is not trained on (label -1) are left out."""
        labels = np.array([self.label_mapping[inst['bbox_label']] for inst in instances], dtype=np.int64)
        keep = labels >= 0
        kept = [inst for inst, k in zip(instances, keep) if k]
        return dict(
            gt_bboxes=np.array([inst['bbox'] for inst in kept], dtype=np.float64).reshape(-1, 4),
            gt_bboxes_labels=labels[keep],
            centers_2d=np.array([inst['center_2d'] for inst in kept], dtype=np.float64).reshape(-1, 2),
            depths=np.array([inst['depth'] for inst in kept], dtype=np.float64).reshape(-1))

    def run_indices(self, idx: int) -> List[int]:
        """The ``queue_length`` indices ending at ``idx`` within its run, oldest first (the run's first sample
        repeated when the run started less than ``queue_length`` samples ago)."""
        start = idx
        while start > 0 and self.flag[start - 1] == self.flag[idx]:
            start -= 1
        return [max(start, i) for i in range(idx - self.queue_length + 1, idx + 1)]

    def prepare_data(self, idx: int) -> Union[dict, List[dict], None]:
        if self.test_mode or self.queue_length == 1:
            return super().prepare_data(idx)
        queue = []
        for i in self.run_indices(idx):
            data = super().prepare_data(i)
            if data is None:
                return None
            queue.append(data)
        return queue


@DATA_SAMPLERS.register_module()
class StreamBatchSampler(Sampler):
    """Batches for streaming training: each batch slot walks through runs (``dataset.flag`` groups) one sample
    after the other, in time order, so a detector's memory always holds the slot's previous frame.

    Runs are dealt to the slots of all processes from one seeded random order (a fresh order each time the list
    is used up); a slot takes its next run when its current one ends, and slots keep their place across epochs,
    as StreamPETR's ``InfiniteGroupEachSampleInBatchSampler``. An epoch has ``ceil(len(dataset) / (batch_size *
    world_size))`` batches.

    Used as a dataloader's ``batch_sampler`` (``batch_sampler=dict(type='StreamBatchSampler')``); mmengine passes
    the dataloader's sampler, whose dataset it reads, and ``batch_size``.

    Args:
        sampler: a sampler with a ``dataset`` that has a ``flag`` array (``NuScenesMultiViewDataset``).
        batch_size: samples per batch and process.
        seed: seed of the run order (the same on every process).
    """

    def __init__(self, sampler, batch_size: int, seed: Optional[int] = None) -> None:
        rank, world_size = get_dist_info()
        # mmengine's DistSamplerSeedHook reads batch_sampler.sampler
        self.sampler = sampler
        self.flag = np.asarray(sampler.dataset.flag)
        self.batch_size = batch_size
        self.num_slots = batch_size * world_size
        self.runs = [np.flatnonzero(self.flag == g).tolist() for g in range(int(self.flag.max()) + 1)]
        if len(self.runs) < self.num_slots:
            raise ValueError(f'{len(self.runs)} runs cannot feed {self.num_slots} batch slots: lower the batch size '
                             'or raise seq_split_num')
        self.seed = sync_random_seed() if seed is None else seed
        # Slot s of all processes takes runs s, s + num_slots, ... of the shared order.
        self.dealt = [itertools.islice(self._run_order(), slot, None, self.num_slots)
                      for slot in range(rank * batch_size, (rank + 1) * batch_size)]
        self.buffers = [[] for _ in self.dealt]
        self.num_batches = -(-len(self.flag) // self.num_slots)

    def _run_order(self):
        """Infinite run indices: seeded permutations of all runs, one after the other."""
        generator = torch.Generator().manual_seed(self.seed)
        while True:
            yield from torch.randperm(len(self.runs), generator=generator).tolist()

    def __iter__(self):
        for _ in range(self.num_batches):
            batch = []
            for k, buffer in enumerate(self.buffers):
                if not buffer:
                    buffer.extend(self.runs[next(self.dealt[k])])
                batch.append(buffer.pop(0))
            yield batch

    def __len__(self) -> int:
        return self.num_batches
