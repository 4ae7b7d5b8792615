"""KITTI monocular 3D detection dataset on the mmdet3d 1.x info files of ``tools/create_data.py kitti``."""
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
from mmdet3d.datasets import Det3DDataset, KittiDataset
from mmdet3d.structures import CameraInstance3DBoxes

from perception.registry import DATASETS

# The annotations LoadAnnotationsMono3D reads.
ANN_KEYS = ('gt_bboxes_3d', 'gt_labels_3d', 'gt_bboxes', 'gt_bboxes_labels', 'centers_2d', 'depths')
# KITTI's loosest difficulty as the official MonoDETR reads it (``Object3d.get_obj_level``): box height + 1 of
# at least 25 px, truncation at most 0.5, occlusion at most 2; other objects are of its 'UnKnown' level.
KNOWN_LEVEL_MIN_HEIGHT = 25
KNOWN_LEVEL_MAX_TRUNCATION = 0.5
KNOWN_LEVEL_MAX_OCCLUSION = 2


@DATASETS.register_module()
class KittiMono3DDataset(KittiDataset):
    """KITTI frames seen by camera 2, with camera-frame 3D boxes.

    The split is the info file (``kitti_infos_{train,val,trainval,test}.pkl``, built from ``ImageSets``).
    Classes are chosen with ``metainfo=dict(classes=[...])`` among KITTI's 8 (``KittiDataset.METAINFO``).

    Annotations per frame (``ann_info`` in training, ``eval_ann_info`` in test mode), N objects of the chosen
    classes (DontCare rows and the other classes are left out; the evaluator reads the label files):

    - ``gt_bboxes_3d``: :class:`CameraInstance3DBoxes` (N, 7) x, y, z (bottom centre), l, h, w, ry; metres, rad.
    - ``gt_labels_3d``, ``gt_bboxes_labels``: (N,) int64 indices into the chosen classes.
    - ``gt_bboxes``: (N, 4) float32 2D boxes x1, y1, x2, y2 (pixels, KITTI labels).
    - ``centers_2d``: (N, 2) float32 projection of each box's gravity centre with ``cam2img``, pixels.
    - ``depths``: (N,) float32 projective depth of that centre, metres.

    Each frame's info also holds ``frame_id``, the KITTI frame number of the info file (8 for
    ``000008.png``), which ``KittiMetric`` names the ground truth and the result files by; mmengine's
    ``sample_idx`` is the position in the dataset.

    Args:
        data_root: dataset root.
        ann_file: info file, relative to ``data_root``.
        pipeline: transforms.
        data_prefix: folder of the images, relative to ``data_root``.
        modality: the camera only by default.
        default_cam_key: camera whose image, ``cam2img`` and ``lidar2cam`` the pipeline gets.
        box_type_3d: 'Camera'; other box types go through ``KittiDataset`` (LiDAR-based detection).
        ann_classes: keep only the objects of these classes (names among ``classes``) in the annotations;
            their labels still index ``classes``. The official MonoDETR and MonoDGP train their 3-class heads
            on cars alone (``writelist=['Car']``); None keeps every chosen class.
        drop_unknown_level: leave out the objects of KITTI's 'UnKnown' level, as the official training
            set does: 2D box height + 1 below 25 px, truncation above 0.5 or occlusion above 2 (the official
            code's level, whose heights differ by one pixel from the devkit's difficulty).
        **kwargs: as ``Det3DDataset`` (``metainfo``, ``test_mode``, ``filter_empty_gt`` ...).
    """

    def __init__(self,
                 data_root: str,
                 ann_file: str,
                 pipeline: List[Union[dict, Callable]] = [],
                 data_prefix: dict = dict(img='training/image_2'),
                 modality: dict = dict(use_camera=True, use_lidar=False),
                 default_cam_key: str = 'CAM2',
                 box_type_3d: str = 'Camera',
                 ann_classes: Optional[Sequence[str]] = None,
                 drop_unknown_level: bool = False,
                 **kwargs) -> None:
        if box_type_3d.lower() != 'camera':
            raise ValueError(f'{self.__class__.__name__} gives camera-frame boxes, got box_type_3d={box_type_3d!r}')
        self.ann_classes = None if ann_classes is None else tuple(ann_classes)
        self.drop_unknown_level = drop_unknown_level
        super().__init__(data_root=data_root, ann_file=ann_file, pipeline=pipeline, data_prefix=data_prefix,
                         modality=modality, default_cam_key=default_cam_key, load_type='frame_based',
                         box_type_3d=box_type_3d, **kwargs)

    def parse_data_info(self, info: dict) -> dict:
        info = super().parse_data_info(info)
        # mmengine's get_data_info overwrites sample_idx with the dataset position, which names the wrong
        # frame in every split that is not frames 0..N-1 in order (KITTI val, the synthetic val 800..999).
        info['frame_id'] = int(info['sample_idx'])
        return info

    def parse_ann_info(self, info: dict) -> dict:
        ann_info = Det3DDataset.parse_ann_info(self, info)
        if ann_info is None:
            return dict(
                gt_bboxes_3d=CameraInstance3DBoxes(np.zeros((0, 7), dtype=np.float32)),
                gt_labels_3d=np.zeros(0, dtype=np.int64),
                gt_bboxes=np.zeros((0, 4), dtype=np.float32),
                gt_bboxes_labels=np.zeros(0, dtype=np.int64),
                centers_2d=np.zeros((0, 2), dtype=np.float32),
                depths=np.zeros(0, dtype=np.float32))
        # The info files label DontCare (and only DontCare) with -1; unchosen classes are mapped to -1 above.
        keep = ann_info['gt_labels_3d'] > -1
        if self.ann_classes is not None:
            classes = self.metainfo['classes']
            unknown = sorted(set(self.ann_classes) - set(classes))
            if unknown:
                raise ValueError(f'ann_classes {unknown} are not among the classes {list(classes)}')
            keep &= np.isin(ann_info['gt_labels_3d'], [classes.index(name) for name in self.ann_classes])
        if self.drop_unknown_level:
            boxes = ann_info['gt_bboxes'].reshape(-1, 4).astype(np.float64)
            keep &= ((boxes[:, 3] - boxes[:, 1] + 1 >= KNOWN_LEVEL_MIN_HEIGHT)
                     & (ann_info['truncated'] <= KNOWN_LEVEL_MAX_TRUNCATION)
                     & (ann_info['occluded'] <= KNOWN_LEVEL_MAX_OCCLUSION))
        # mmdet3d hands over every field of the info file's label rows; the pipeline reads these alone
        filtered = {key: ann_info[key][keep] for key in ANN_KEYS}
        filtered['gt_bboxes_3d'] = CameraInstance3DBoxes(filtered['gt_bboxes_3d'].reshape(-1, 7))
        filtered['gt_bboxes'] = filtered['gt_bboxes'].reshape(-1, 4)
        filtered['centers_2d'] = filtered['centers_2d'].reshape(-1, 2)
        return filtered
