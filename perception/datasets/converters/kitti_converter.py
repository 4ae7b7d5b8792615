"""KITTI object dataset -> info files in the mmdet3d 1.x format (``metainfo`` + ``data_list``).

Written for this project because mmdet3d ships its converter (``tools/dataset_converters``) only in its repository,
not in the wheel. The output equals what mmdet3d 1.4's ``create_data.py kitti`` followed by
``update_infos_to_v2.py`` writes (checked against mmdet3d's own info files in the tests), with three deliberate
differences: no ``cam_instances`` (mmdet3d's released info files have none either), projected centres and depths
computed in float64 instead of float32, and DontCare rows that need not come last in a label file.

Expected layout (``ImageSets/test.txt`` and ``testing/`` are optional, ``planes/`` only with ``with_plane``)::

    root/ImageSets/{train,val,test}.txt
    root/training/{image_2,label_2,calib,velodyne[,planes]}/000000.{png,txt,txt,bin[,txt]}
    root/testing/{image_2,calib,velodyne}/...
"""
import os
import os.path as osp
import pickle
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.logging import print_log
from mmengine.utils import track_iter_progress
from PIL import Image

from perception.fileio import atomic_write
from perception.fileio.kitti import CALIB_SHAPES, read_calib_file, read_label_rows
from perception.structures.camera import cam2img_to_4x4, project_points

# The label order of mmdet3d's KITTI infos: ``bbox_label`` indexes this tuple, other names (DontCare) get -1.
KITTI_CLASSES = ('Pedestrian', 'Cyclist', 'Car', 'Van', 'Truck', 'Person_sitting', 'Tram', 'Misc')
INFO_VERSION = '1.1'
# The official difficulty filters, easy / moderate / hard.
MIN_HEIGHT = (40, 25, 25)
MAX_OCCLUSION = (0, 1, 2)
MAX_TRUNCATION = (0.15, 0.3, 0.5)
# mmdet3d counts LiDAR points inside the camera frustum between these depths (metres).
FRUSTUM_NEAR, FRUSTUM_FAR = 0.001, 100.0


def read_imageset(path: str) -> List[int]:
    """Frame ids of an ``ImageSets/*.txt`` file (one integer per line; blank lines are skipped)."""
    ids = []
    with open(path) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                ids.append(int(line))
            except ValueError:
                raise ValueError(f'{path}:{lineno}: expected a frame id (integer), got {line.strip()!r}') from None
    return ids


def kitti_difficulty(bbox: np.ndarray, occluded: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    """KITTI difficulty of each label row: 0 easy, 1 moderate, 2 hard, -1 none of them.

    A row belongs to the first level whose filters it passes: 2D box height strictly above 40/25/25 px,
    occlusion at most 0/1/2, truncation at most 0.15/0.3/0.5 (mmdet3d's ``add_difficulty_to_annos``).

    Args:
        bbox: (N, 4) 2D boxes x1, y1, x2, y2, pixels.
        occluded: (N,) occlusion levels.
        truncated: (N,) truncation in [0, 1].

    Returns:
        (N,) int32.
    """
    height = bbox[:, 3] - bbox[:, 1]
    difficulty = np.full(len(bbox), -1, dtype=np.int32)
    for level in reversed(range(3)):
        passes = ((height > MIN_HEIGHT[level]) & (occluded <= MAX_OCCLUSION[level])
                  & (truncated <= MAX_TRUNCATION[level]))
        difficulty[passes] = level
    return difficulty


def count_points_in_boxes(points: np.ndarray, lidar2cam: np.ndarray, cam2img: np.ndarray,
                          image_shape: Sequence[int], boxes: np.ndarray) -> np.ndarray:
    """Number of LiDAR points inside each 3D box, counting only points seen by the camera (``num_lidar_pts``).

    Follows mmdet3d's converter so that the counts equal its info files: points outside the image frustum (pixels
    outside [0, W] x [0, H] or projective depth outside [0.001, 100] m) are dropped, so a truncated object counts
    only its visible points; each camera box is then moved to the LiDAR frame by its bottom centre only, with
    yaw ``-ry - pi/2`` and its height along LiDAR z. The box thus ignores the small tilt between the two frames,
    which moves ground points near a box's bottom in or out.

    Args:
        points: (M, 3) LiDAR points, metres.
        lidar2cam: (4, 4) LiDAR to rectified camera (``R0_rect @ Tr_velo_to_cam``).
        cam2img: (3, 4) or (4, 4) projection of the image (``P2``).
        image_shape: (H, W) of the image, pixels.
        boxes: (K, 7) boxes x, y, z (bottom centre), l, h, w, ry in the rectified camera frame.

    Returns:
        (K,) int32 counts.
    """
    uvd = project_points(points @ lidar2cam[:3, :3].T + lidar2cam[:3, 3], cam2img, with_depth=True)
    height, width = image_shape
    visible = ((uvd[:, 2] >= FRUSTUM_NEAR) & (uvd[:, 2] <= FRUSTUM_FAR) & (uvd[:, 0] >= 0) & (uvd[:, 0] <= width)
               & (uvd[:, 1] >= 0) & (uvd[:, 1] <= height))
    points = points[visible]
    cam2lidar = np.linalg.inv(lidar2cam)
    bottoms = boxes[:, :3] @ cam2lidar[:3, :3].T + cam2lidar[:3, 3]
    yaw = -boxes[:, 6] - np.pi / 2
    offset = points[:, None, :] - bottoms[None]
    cos, sin = np.cos(yaw), np.sin(yaw)
    along_l = offset[..., 0] * cos + offset[..., 1] * sin
    along_w = -offset[..., 0] * sin + offset[..., 1] * cos
    inside = ((np.abs(along_l) <= boxes[:, 3] / 2) & (np.abs(along_w) <= boxes[:, 5] / 2)
              & (offset[..., 2] >= 0) & (offset[..., 2] <= boxes[:, 4]))
    return inside.sum(axis=0).astype(np.int32)


def frame_file(root: str, split_dir: str, folder: str, idx: int, suffix: str) -> str:
    """``root/split_dir/folder/<idx:06d><suffix>``, which must exist (FileNotFoundError naming the frame)."""
    path = osp.join(root, split_dir, folder, f'{idx:06d}{suffix}')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: missing (frame {idx:06d} is listed in ImageSets)')
    return path


def read_image_shape(path: str) -> tuple:
    """(height, width) of an image file, read from its header; ValueError naming an unreadable file."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except OSError as e:
        raise ValueError(f'{path}: unreadable image ({e})') from None
    return height, width


def _read_points(path: str, num_features: int = 4) -> np.ndarray:
    points = np.fromfile(path, dtype=np.float32)
    if points.size % num_features:
        raise ValueError(f'{path}: {points.size} float32 values is not a multiple of {num_features} '
                         '(x, y, z, reflectance per point)')
    return points.reshape(-1, num_features)


def _instances(label_path: str, cam2img: np.ndarray, points: Optional[np.ndarray], lidar2cam: np.ndarray,
               image_shape: tuple) -> List[dict]:
    labels, linenos = read_label_rows(label_path)
    num = len(labels['name'])
    for name, lineno in zip(labels['name'], linenos):
        if name not in KITTI_CLASSES and name != 'DontCare':
            raise ValueError(f'{label_path}:{lineno}: unknown object type {name!r}, expected DontCare or one of '
                             f'{", ".join(KITTI_CLASSES)}')
    is_object = labels['name'] != 'DontCare'
    # mmdet3d stores boxes as x, y, z, l, h, w, ry; the file has h, w, l.
    dims = labels['dimensions'][:, [2, 0, 1]]
    boxes = np.concatenate([labels['location'], dims, labels['rotation_y'][:, None]], axis=1)
    num_points = np.full(num, -1, dtype=np.int32)
    if points is not None:
        num_points[is_object] = count_points_in_boxes(points[:, :3].astype(np.float64), lidar2cam, cam2img,
                                                      image_shape, boxes[is_object])
    gravity_centers = labels['location'] - np.stack([np.zeros(num), dims[:, 1] / 2, np.zeros(num)], axis=1)
    centers = project_points(gravity_centers, cam2img, with_depth=True)
    index = np.where(is_object, np.cumsum(is_object) - 1, -1)
    difficulty = kitti_difficulty(labels['bbox'], labels['occluded'], labels['truncated'])
    score = labels.get('score', np.zeros(num))

    instances = []
    for i in range(num):
        label = KITTI_CLASSES.index(labels['name'][i]) if is_object[i] else -1
        instances.append(
            dict(
                bbox=labels['bbox'][i].tolist(),
                bbox_label=label,
                bbox_3d=boxes[i].tolist(),
                bbox_label_3d=label,
                depth=float(centers[i, 2]),
                center_2d=centers[i, :2].tolist(),
                num_lidar_pts=int(num_points[i]),
                difficulty=int(difficulty[i]),
                truncated=float(labels['truncated'][i]),
                occluded=int(labels['occluded'][i]),
                alpha=float(labels['alpha'][i]),
                score=float(score[i]),
                index=int(index[i]),
                group_id=i))
    return instances


def _read_plane(path: str) -> np.ndarray:
    """The ground plane (a, b, c, d) of a ``planes/*.txt`` file: its 4th line, in the camera frame."""
    with open(path) as f:
        lines = f.read().splitlines()
    if len(lines) < 4 or len(lines[3].split()) != 4:
        raise ValueError(f'{path}:4: expected the plane as 4 numbers on line 4')
    plane = np.array([float(v) for v in lines[3].split()])
    if not np.isfinite(plane).all():
        raise ValueError(f'{path}:4: plane coefficients must be finite, got {lines[3]!r}')
    return plane


def get_frame_info(root: str, idx: int, training: bool = True, with_label: bool = True, with_lidar: bool = True,
                   with_plane: bool = False) -> dict:
    """The mmdet3d 1.x info of one KITTI frame.

    Args:
        root: dataset root (holding ``training/`` and ``testing/``).
        idx: frame id.
        training: read from ``training/`` (else ``testing/``).
        with_label: read ``label_2`` into ``instances`` (an empty list otherwise).
        with_lidar: read ``velodyne`` to fill ``lidar_points`` and ``num_lidar_pts`` (-1 for every row without it).
        with_plane: read the ground plane of ``planes/`` into ``plane``.

    Returns:
        dict with ``sample_idx``, ``images`` (CAM0..CAM3 ``cam2img`` 4x4 and ``lidar2img``; CAM2 also
        ``img_path``, ``height``, ``width``, ``lidar2cam``; ``R0_rect`` 4x4), ``lidar_points`` and ``instances``.
    """
    split_dir = 'training' if training else 'testing'
    img_path = frame_file(root, split_dir, 'image_2', idx, '.png')
    calib_path = frame_file(root, split_dir, 'calib', idx, '.txt')
    image_shape = read_image_shape(img_path)
    # As mmdet3d's infos: every matrix 4x4 (R0_rect and the 3x4 ones padded with the identity's last row).
    calib = {key: cam2img_to_4x4(m) for key, m in read_calib_file(calib_path, required=tuple(CALIB_SHAPES)).items()}

    # mmdet3d stores these in float32 (and multiplies them in float32); kept so the files equal mmdet3d's.
    rect = calib['R0_rect'].astype(np.float32)
    velo2cam = calib['Tr_velo_to_cam'].astype(np.float32)
    lidar2cam = rect @ velo2cam
    images = {f'CAM{i}': dict(cam2img=calib[f'P{i}'].tolist(), lidar2img=(calib[f'P{i}'] @ lidar2cam).tolist())
              for i in range(4)}
    images['CAM2'].update(
        img_path=osp.basename(img_path), height=image_shape[0], width=image_shape[1], lidar2cam=lidar2cam.tolist())
    images['R0_rect'] = rect.tolist()

    lidar_points = dict(num_pts_feats=4)
    points = None
    if with_lidar:
        lidar_path = frame_file(root, split_dir, 'velodyne', idx, '.bin')
        points = _read_points(lidar_path)
        lidar_points['lidar_path'] = osp.basename(lidar_path)
    lidar_points['Tr_velo_to_cam'] = velo2cam.tolist()
    lidar_points['Tr_imu_to_velo'] = calib['Tr_imu_to_velo'].astype(np.float32).tolist()

    instances = []
    if with_label:
        label_path = frame_file(root, split_dir, 'label_2', idx, '.txt')
        # num_lidar_pts uses the float64 calibration, as mmdet3d's converter does.
        instances = _instances(label_path, calib['P2'], points, calib['R0_rect'] @ calib['Tr_velo_to_cam'],
                               image_shape)
    info = dict(sample_idx=idx, images=images, lidar_points=lidar_points, instances=instances)
    if with_plane:
        info['plane'] = _read_plane(frame_file(root, split_dir, 'planes', idx, '.txt'))
    return info


def _metainfo(data_list: List[dict]) -> dict:
    categories = {name: i for i, name in enumerate(KITTI_CLASSES)}
    # As mmdet3d, names without a label appear only in files that hold them; KITTI's only such name is DontCare.
    if any(instance['bbox_label'] == -1 for info in data_list for instance in info['instances']):
        categories['DontCare'] = -1
    return dict(categories=categories, dataset='kitti', info_version=INFO_VERSION)


def _dump(obj, path: str) -> None:
    """Write a pickle atomically, so an interrupted run never leaves a truncated info file."""

    def write(tmp: str) -> None:
        with open(tmp, 'wb') as f:
            pickle.dump(obj, f)

    atomic_write(path, write)


def create_kitti_infos(root: str, out_dir: Optional[str] = None, prefix: str = 'kitti', with_plane: bool = False,
                       with_lidar: bool = True) -> Dict[str, str]:
    """Write ``{prefix}_infos_{train,val,trainval,test}.pkl`` for the KITTI object dataset at ``root``.

    ``train``/``val`` read ``training/`` with labels, ``test`` reads ``testing/`` without them (and only when
    ``ImageSets/test.txt`` exists), ``trainval`` is ``train`` followed by ``val``.

    Args:
        root: dataset root.
        out_dir: where to write (``root`` by default).
        prefix: file name prefix.
        with_plane: also store the ground planes of ``training/planes`` (train/val only, as mmdet3d).
        with_lidar: read the velodyne scans (``lidar_points.lidar_path`` and ``num_lidar_pts``); without them
            ``lidar_path`` is absent and ``num_lidar_pts`` is -1.

    Returns:
        dict split -> path of the written file.
    """
    out_dir = root if out_dir is None else out_dir
    imagesets = osp.join(root, 'ImageSets')
    splits = dict(train=True, val=True)
    if osp.isfile(osp.join(imagesets, 'test.txt')):
        splits['test'] = False
    else:
        print_log(f'{imagesets}/test.txt not found: no test infos written', 'current')

    data_lists, written = {}, {}
    for split, training in splits.items():
        ids = read_imageset(osp.join(imagesets, f'{split}.txt'))
        print_log(f'KITTI {split}: {len(ids)} frames', 'current')
        if not ids:
            warnings.warn(f'{imagesets}/{split}.txt lists no frame: the {split} infos hold an empty data_list')
        data_lists[split] = [
            get_frame_info(root, idx, training=training, with_label=training, with_lidar=with_lidar,
                           with_plane=with_plane and training) for idx in track_iter_progress(ids)
        ]
    data_lists['trainval'] = data_lists['train'] + data_lists['val']
    os.makedirs(out_dir, exist_ok=True)
    for split in ('train', 'val', 'trainval', 'test'):
        if split not in data_lists:
            continue
        path = osp.join(out_dir, f'{prefix}_infos_{split}.pkl')
        _dump(dict(metainfo=_metainfo(data_lists[split]), data_list=data_lists[split]), path)
        written[split] = path
        print_log(f'KITTI {split} infos written to {path}', 'current')
    return written
