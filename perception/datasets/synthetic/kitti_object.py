"""KITTI object detection layout: ``training/{image_2,image_3,calib,label_2,velodyne}`` + ``ImageSets``
(``mono=True``: ``training/{image_2,calib,label_2}``, as KITTI's monocular download).

Each frame is an independent street scene seen from a standing KITTI car (:class:`KittiRig`), so the
files read exactly like the real benchmark's: KITTI's intrinsics and calibration matrices, a full 360 deg
64-beam sweep in the Velodyne frame, and labels with KITTI's semantics (see ``labels.py``).
"""
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

from perception.fileio.kitti import write_calib_file, write_label_file

from .geometry import HDL64_ELEVATIONS, KittiRig, transform_points
from .labels import kitti_labels
from .parallel import frame_rng, prepare_output_dir, run_parallel
from .render import CameraView, LidarScan, World
from .scene import KITTI_CLASS_WEIGHTS, KITTI_CLASSES, Ego, SceneObject, Street, sample_objects, sample_street

LIDAR_AZIMUTH_STEPS = 2000
MIN_DISTANCE, MAX_DISTANCE = 4.0, 70.0


@dataclass
class KittiFrame:
    """One rendered frame: the left/right colour views, the LiDAR sweep and the label dict (``right`` and ``scan``
    are None for a monocular frame)."""
    left: CameraView
    right: Optional[CameraView]
    scan: Optional[LidarScan]
    labels: Dict[str, np.ndarray]
    objects: List[SceneObject]


def sample_kitti_scene(rng: np.random.Generator) -> Tuple[Street, List[SceneObject]]:
    """A street and 6-16 objects between 4 and 70 m from camera 0, mostly in its field of view."""
    street = sample_street(rng, (-20.0, 160.0))

    def region(rng):
        # Sample in polar coordinates so that the distance bounds hold before the zone moves y.
        while True:
            dist = rng.uniform(MIN_DISTANCE + 0.5, MAX_DISTANCE - 3.0)
            angle = rng.uniform(-0.75, 0.75)
            x, y = dist * np.cos(angle), dist * np.sin(angle)
            if x > MIN_DISTANCE:
                return x, y

    candidates = sample_objects(rng, street, KITTI_CLASSES, KITTI_CLASS_WEIGHTS, int(rng.integers(6, 17)),
                                Ego(), [0.0], region)
    objects = []
    for obj in candidates:
        dist = np.hypot(obj.center[0], obj.center[1])
        if MIN_DISTANCE <= dist <= MAX_DISTANCE:
            obj.track_id = len(objects)
            objects.append(obj)
    return street, objects


def render_kitti_frame(seed: int, index: int, rig: KittiRig = None, mono: bool = False) -> KittiFrame:
    """Sample and render frame ``index`` of the dataset with ``seed`` (independent of other frames); ``mono``: the
    left camera only (the same left view and labels, without the right view and the LiDAR sweep)."""
    rig = rig or KittiRig()
    street, objects = sample_kitti_scene(frame_rng(seed, 0, index))
    world = World(street, objects)
    left_pose = rig.cam2ego(2)
    left = world.render(rig.K, left_pose, rig.width, rig.height)
    right = scan = None
    if not mono:
        right = world.render(rig.K, rig.cam2ego(3), rig.width, rig.height)
        scan = world.lidar(rig.velo2ego, HDL64_ELEVATIONS, LIDAR_AZIMUTH_STEPS)
    world2rect = np.linalg.inv(rig.rect2ego)
    labels = kitti_labels(objects, world, left.instance, world2rect, rig.P(2), left_pose)
    return KittiFrame(left, right, scan, labels, objects)


def _write_frame(task: Tuple[str, int, int, bool]) -> Dict[str, int]:
    out, seed, index, mono = task
    rig = KittiRig()
    frame = render_kitti_frame(seed, index, rig, mono)
    root = Path(out) / 'training'
    name = f'{index:06d}'
    cv2.imwrite(str(root / 'image_2' / f'{name}.png'), frame.left.image[..., ::-1])
    write_calib_file(root / 'calib' / f'{name}.txt', rig.calib())
    write_label_file(root / 'label_2' / f'{name}.txt', frame.labels)
    names = frame.labels['name']
    counts = {'objects': int((names != 'DontCare').sum()), 'dontcare': int((names == 'DontCare').sum())}
    if not mono:
        cv2.imwrite(str(root / 'image_3' / f'{name}.png'), frame.right.image[..., ::-1])
        velo = np.concatenate([frame.scan.points, frame.scan.intensity[:, None]], axis=1).astype(np.float32)
        velo.tofile(root / 'velodyne' / f'{name}.bin')
        counts['points'] = len(velo)
    return counts


# Top-level names of the output (with the info files `create_data.py kitti` adds): all that --force removes.
OUTPUTS = ('training', 'ImageSets', 'kitti_infos_*.pkl')


def generate_kitti_object(out_dir: Union[str, os.PathLike], num_train: int = 400, num_val: int = 100,
                          seed: int = 0, workers: int = 2, force: bool = False,
                          progress: bool = True, mono: bool = False) -> Dict[str, int]:
    """Write a KITTI object dataset of ``num_train + num_val`` frames to ``out_dir``; ``mono``: only
    ``image_2``, ``calib`` and ``label_2`` (the same files as without it; no ``image_3``, no ``velodyne``: about
    half the rendering time).

    Frames ``000000 .. num_train - 1`` are listed in ``ImageSets/train.txt``, the next ``num_val`` in
    ``val.txt`` (all under ``training/`` as in the usual train/val split of the KITTI training set) and
    all of them in ``trainval.txt``. The same ``seed`` writes byte-identical files whatever ``workers``.

    Returns:
        counts: ``frames``, ``objects`` (labelled), ``dontcare`` and (without ``mono``) ``points``.
    """
    out = prepare_output_dir(out_dir, force, OUTPUTS)
    for sub in ('image_2', 'calib', 'label_2') + (() if mono else ('image_3', 'velodyne')):
        (out / 'training' / sub).mkdir(parents=True)
    (out / 'ImageSets').mkdir()
    total = num_train + num_val
    splits = {'train': range(num_train), 'val': range(num_train, total), 'trainval': range(total)}
    for split, ids in splits.items():
        (out / 'ImageSets' / f'{split}.txt').write_text(''.join(f'{i:06d}\n' for i in ids))
        if not ids:
            warnings.warn(f'{out}/ImageSets/{split}.txt is an empty split (0 frames)')
    stats = run_parallel(_write_frame, [(str(out), seed, i, mono) for i in range(total)], workers,
                         'synthetic-kitti', progress)
    counts = {'frames': total}
    for key in ('objects', 'dontcare') + (() if mono else ('points',)):
        counts[key] = sum(s[key] for s in stats)
    return counts


def lidar_to_image(points: np.ndarray, rig: KittiRig, cam: int) -> Tuple[np.ndarray, np.ndarray]:
    """Project Velodyne points (N, 3) into camera ``cam``: pixel coordinates (N, 2) and depth (N,)."""
    rect = transform_points(rig.velo2rect, points)
    uvw = rect @ rig.P(cam)[:, :3].T + rig.P(cam)[:, 3]
    return uvw[:, :2] / uvw[:, 2:3], uvw[:, 2]
