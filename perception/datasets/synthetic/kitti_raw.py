"""KITTI raw drives with KITTI depth ground truth and Eigen/Zhou split lists.

Layout written under ``out_dir``::

    raw/<date>/calib_{cam_to_cam,velo_to_cam,imu_to_velo}.txt
    raw/<date>/<date>_drive_<nnnn>_sync/
        image_02/data/<frame:010d>.png  image_03/data/...   (+ timestamps.txt)
        velodyne_points/data/<frame:010d>.bin                (+ timestamps{,_start,_end}.txt)
        oxts/data/<frame:010d>.txt                           (+ timestamps.txt, dataformat.txt)
        poses.txt                   camera-0 pose of each frame in the first frame's camera-0 frame,
                                    3x4 row-major per line (the KITTI odometry format)
    depth/{train,val}/<date>_drive_<nnnn>_sync/proj_depth/
        groundtruth/image_0{2,3}/<frame:010d>.png    dense depth from the renderer
        velodyne_raw/image_0{2,3}/<frame:010d>.png   the LiDAR sweep projected (sparse)
    splits/eigen_zhou/{train,val}_files.txt  splits/eigen/test_files.txt
        lines ``<date>/<date>_drive_<nnnn>_sync <frame> l|r`` (monodepth2's list format)

The car drives at a constant speed with a slowly oscillating yaw, among objects that move on their
own; all sensors fire at the same instant (the real rig is synchronised to the LiDAR sweep).
"""
import datetime
import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import cv2
import numpy as np

from perception.fileio.depth import write_depth_png

from .geometry import HDL64_ELEVATIONS, KittiRig
from .kitti_object import LIDAR_AZIMUTH_STEPS, lidar_to_image
from .parallel import frame_rng, prepare_output_dir, run_parallel
from .render import World
from .scene import KITTI_CLASS_WEIGHTS, KITTI_CLASSES, Ego, sample_objects, sample_street

FRAME_PERIOD = 0.1
FRAMES_PER_TASK = 25
MAX_DEPTH = 120.0
EARTH_RADIUS = 6378137.0
# Where drive 1 starts (Karlsruhe, as the real recordings).
ORIGIN_LAT, ORIGIN_LON, ORIGIN_ALT = 49.011, 8.4235, 115.0
OXTS_FIELDS = ('lat lon alt roll pitch yaw vn ve vf vl vu ax ay az af al au wx wy wz wf wl wu '
               'pos_accuracy vel_accuracy navstat numsats posmode velmode orimode').split()


def drive_name(date: str, drive: int) -> str:
    return f'{date}_drive_{drive:04d}_sync'


class Drive:
    """One sequence: a street, a moving ego car and moving objects, seeded by (seed, drive)."""

    def __init__(self, seed: int, drive: int, num_frames: int):
        rng = frame_rng(seed, 1, drive)
        self.num_frames = num_frames
        self.rig = KittiRig()
        self.ego = Ego(speed=rng.uniform(4.0, 11.0), yaw_amp=rng.uniform(0.0, 0.04),
                       yaw_period=rng.uniform(6.0, 14.0))
        duration = num_frames * FRAME_PERIOD
        travel = self.ego.speed * duration
        self.street = sample_street(rng, (-30.0, travel + 160.0))

        def region(rng):
            return rng.uniform(-10.0, travel + 70.0), rng.uniform(-12.0, 12.0)

        times = np.arange(num_frames) * FRAME_PERIOD
        self.objects = sample_objects(rng, self.street, KITTI_CLASSES, KITTI_CLASS_WEIGHTS,
                                      int(rng.integers(10, 22) * (1 + travel / 70)), self.ego, times, region)

    def ego_pose(self, frame: int) -> np.ndarray:
        """(4, 4) ego -> world pose at ``frame``; world = the ego frame of frame 0."""
        return self.ego.pose_at(frame * FRAME_PERIOD)

    def render(self, frame: int):
        """Left/right views, the LiDAR sweep and the ego pose at ``frame``."""
        t = frame * FRAME_PERIOD
        ego2world = self.ego_pose(frame)
        world = World(self.street, self.objects, t, ground_center=ego2world[:2, 3])
        rig = self.rig
        left = world.render(rig.K, ego2world @ rig.cam2ego(2), rig.width, rig.height)
        right = world.render(rig.K, ego2world @ rig.cam2ego(3), rig.width, rig.height)
        scan = world.lidar(ego2world @ rig.velo2ego, HDL64_ELEVATIONS, LIDAR_AZIMUTH_STEPS)
        return left, right, scan, ego2world


def sparse_depth(points: np.ndarray, rig: KittiRig, cam: int) -> np.ndarray:
    """(H, W) depth of the nearest LiDAR point per pixel (0 where none), like KITTI ``velodyne_raw``."""
    uv, z = lidar_to_image(points, rig, cam)
    px = np.round(uv).astype(np.int64)
    keep = (z > 0.1) & (px[:, 0] >= 0) & (px[:, 0] < rig.width) & (px[:, 1] >= 0) & (px[:, 1] < rig.height)
    px, z = px[keep], z[keep]
    depth = np.full(rig.height * rig.width, np.inf)
    np.minimum.at(depth, px[:, 1] * rig.width + px[:, 0], z)
    depth[np.isinf(depth)] = 0
    return depth.reshape(rig.height, rig.width)


def oxts_record(imu2world: np.ndarray, velocity: np.ndarray, yaw_rate: float) -> List[float]:
    """The 30 OXTS values of an IMU pose (4, 4) in a local east-north-up world and its velocity (3,).

    Positions are mapped to latitude/longitude with the inverse of the KITTI devkit's Mercator
    projection (scale from the origin's latitude), so ``pose_from_oxts`` of the devkit recovers them.
    """
    scale = np.cos(np.deg2rad(ORIGIN_LAT))
    mx0 = scale * ORIGIN_LON * np.pi * EARTH_RADIUS / 180
    my0 = scale * EARTH_RADIUS * np.log(np.tan((90 + ORIGIN_LAT) * np.pi / 360))
    mx, my = mx0 + imu2world[0, 3], my0 + imu2world[1, 3]
    lon = mx * 180 / (scale * np.pi * EARTH_RADIUS)
    lat = 360 / np.pi * np.arctan(np.exp(my / (scale * EARTH_RADIUS))) - 90
    R = imu2world[:3, :3]
    yaw = np.arctan2(R[1, 0], R[0, 0])
    pitch = -np.arcsin(np.clip(R[2, 0], -1, 1))
    roll = np.arctan2(R[2, 1], R[2, 2])
    w_world = np.array([0., 0., yaw_rate])
    # Specific force as an accelerometer measures it: centripetal acceleration plus gravity.
    a_world = np.cross(w_world, velocity) + [0., 0., 9.81]
    return [lat, lon, ORIGIN_ALT + imu2world[2, 3], roll, pitch, yaw, velocity[1], velocity[0], *(R.T @ velocity),
            *a_world, *(R.T @ a_world), *w_world, *(R.T @ w_world), 0.02, 0.02, 4, 11, 6, 6, 6]


def _timestamp(start: datetime.datetime, seconds: float) -> str:
    stamp = start + datetime.timedelta(microseconds=round(seconds * 1e6))
    return stamp.strftime('%Y-%m-%d %H:%M:%S.%f') + '000'


def _write_drive_frames(task: Tuple[str, str, int, int, int, Sequence[int], str]) -> int:
    """Render and write some frames of one drive (sampling a drive is too slow to repeat per frame)."""
    out, date, seed, drive_id, num_frames, frames, depth_split = task
    drive = Drive(seed, drive_id, num_frames)
    rig = drive.rig
    name = drive_name(date, drive_id)
    base = Path(out) / 'raw' / date / name
    proj = Path(out) / 'depth' / depth_split / name / 'proj_depth'
    points = 0
    for frame in frames:
        left, right, scan, _ = drive.render(frame)
        stem = f'{frame:010d}'
        cv2.imwrite(str(base / 'image_02' / 'data' / f'{stem}.png'), left.image[..., ::-1])
        cv2.imwrite(str(base / 'image_03' / 'data' / f'{stem}.png'), right.image[..., ::-1])
        velo = np.concatenate([scan.points, scan.intensity[:, None]], axis=1).astype(np.float32)
        velo.tofile(base / 'velodyne_points' / 'data' / f'{stem}.bin')
        for cam, view in ((2, left), (3, right)):
            dense = np.where(view.depth <= MAX_DEPTH, view.depth, 0)
            write_depth_png(proj / 'groundtruth' / f'image_0{cam}' / f'{stem}.png', dense)
            write_depth_png(proj / 'velodyne_raw' / f'image_0{cam}' / f'{stem}.png',
                            sparse_depth(scan.points, rig, cam))
        points += len(velo)
    return points


def _write_drive_meta(out: Path, date: str, drive: Drive, drive_id: int, start: datetime.datetime) -> None:
    """Calibration-independent per-drive files: timestamps, OXTS and poses."""
    base = out / 'raw' / date / drive_name(date, drive_id)
    rig = drive.rig
    times = np.arange(drive.num_frames) * FRAME_PERIOD
    stamps = [_timestamp(start, t) for t in times]
    for sub in ('image_02', 'image_03', 'oxts'):
        (base / sub / 'timestamps.txt').write_text(''.join(s + '\n' for s in stamps))
    velo = base / 'velodyne_points'
    velo.joinpath('timestamps.txt').write_text(''.join(s + '\n' for s in stamps))
    velo.joinpath('timestamps_start.txt').write_text(''.join(_timestamp(start, t - 0.05) + '\n' for t in times))
    velo.joinpath('timestamps_end.txt').write_text(''.join(_timestamp(start, t + 0.05) + '\n' for t in times))
    (base / 'oxts' / 'dataformat.txt').write_text(''.join(f'{f}:\n' for f in OXTS_FIELDS))
    rect0 = drive.ego_pose(0) @ rig.rect2ego
    poses = []
    for frame, t in enumerate(times):
        ego2world = drive.ego_pose(frame)
        yaw = drive.ego.yaw_at(t)
        yaw_rate = drive.ego.yaw_amp * 2 * np.pi / drive.ego.yaw_period * np.cos(2 * np.pi * t / drive.ego.yaw_period)
        velocity = drive.ego.speed * np.array([np.cos(yaw), np.sin(yaw), 0.0])
        # The IMU sits off the ego origin: add the rotation's lever-arm term to its velocity.
        imu2world = ego2world @ rig.imu2ego
        lever = imu2world[:3, 3] - ego2world[:3, 3]
        velocity = velocity + np.cross([0., 0., yaw_rate], lever)
        values = oxts_record(imu2world, velocity, yaw_rate)
        text = ' '.join(f'{v:.12g}' if i < 25 else str(int(v)) for i, v in enumerate(values))
        (base / 'oxts' / 'data' / f'{frame:010d}.txt').write_text(text + '\n')
        pose = np.linalg.inv(rect0) @ ego2world @ rig.rect2ego
        poses.append(' '.join(f'{v:.9e}' for v in pose[:3].reshape(-1)))
    (base / 'poses.txt').write_text(''.join(p + '\n' for p in poses))


def _fmt(matrix) -> str:
    return ' '.join(f'{v:.6e}' for v in np.asarray(matrix, dtype=np.float64).reshape(-1))


def _write_calib(folder: Path, rig: KittiRig) -> None:
    """The three calibration files of a KITTI raw date folder (unrectified = rectified here)."""
    fmt = _fmt
    lines = ['calib_time: 01-Jan-2024 00:00:00', 'corner_dist: 9.950000e-02']
    for cam in range(4):
        c = f'{cam:02d}'
        lines += [f'S_{c}: {fmt([rig.width, rig.height])}', f'K_{c}: {fmt(rig.K)}', f'D_{c}: {fmt(np.zeros(5))}',
                  f'R_{c}: {fmt(np.eye(3))}', f'T_{c}: {fmt([-rig.cam_x[cam], 0, 0])}',
                  f'S_rect_{c}: {fmt([rig.width, rig.height])}', f'R_rect_{c}: {fmt(rig.R0_rect)}',
                  f'P_rect_{c}: {fmt(rig.P(cam))}']
    (folder / 'calib_cam_to_cam.txt').write_text('\n'.join(lines) + '\n')
    velo = rig.Tr_velo_to_cam
    (folder / 'calib_velo_to_cam.txt').write_text(
        f'calib_time: 01-Jan-2024 00:00:00\nR: {fmt(velo[:, :3])}\nT: {fmt(velo[:, 3])}\n'
        f'delta_f: {fmt([0, 0])}\ndelta_c: {fmt([0, 0])}\n')
    imu = rig.Tr_imu_to_velo
    (folder / 'calib_imu_to_velo.txt').write_text(
        f'calib_time: 01-Jan-2024 00:00:00\nR: {fmt(imu[:, :3])}\nT: {fmt(imu[:, 3])}\n')


# Top-level names of the output: all that --force removes.
OUTPUTS = ('raw', 'depth', 'splits')


def generate_kitti_raw(out_dir: Union[str, os.PathLike], num_drives: int = 4, frames_per_drive: int = 50,
                       num_test_drives: int = 1, seed: int = 0, date: str = '2011_09_26', workers: int = 2,
                       force: bool = False, progress: bool = True) -> Dict[str, int]:
    """Write ``num_drives`` synthetic KITTI raw drives with depth ground truth and split lists.

    The last ``num_test_drives`` drives form the Eigen test list (and the depth ``val`` folder); the
    others the Zhou train/val lists (every 10th frame to val; frames with both neighbours only, as
    the Zhou split needs them).

    Returns:
        counts: ``drives``, ``frames`` and ``points``.
    """
    if not 0 <= num_test_drives < num_drives:
        raise ValueError(f'num_test_drives must be in [0, {num_drives}), got {num_test_drives}')
    out = prepare_output_dir(out_dir, force, OUTPUTS)
    day = datetime.datetime.strptime(date, '%Y_%m_%d')
    tasks = []
    lists: Dict[str, List[str]] = {'eigen_zhou/train': [], 'eigen_zhou/val': [], 'eigen/test': []}
    (out / 'raw' / date).mkdir(parents=True)
    _write_calib(out / 'raw' / date, KittiRig())
    for drive_id in range(1, num_drives + 1):
        test = drive_id > num_drives - num_test_drives
        depth_split = 'val' if test else 'train'
        name = drive_name(date, drive_id)
        base = out / 'raw' / date / name
        for sub in ('image_02/data', 'image_03/data', 'velodyne_points/data', 'oxts/data'):
            (base / sub).mkdir(parents=True)
        for kind in ('groundtruth', 'velodyne_raw'):
            for cam in ('image_02', 'image_03'):
                (out / 'depth' / depth_split / name / 'proj_depth' / kind / cam).mkdir(parents=True)
        start = day + datetime.timedelta(hours=10, minutes=drive_id)
        _write_drive_meta(out, date, Drive(seed, drive_id, frames_per_drive), drive_id, start)
        for first in range(0, frames_per_drive, FRAMES_PER_TASK):
            frames = list(range(first, min(first + FRAMES_PER_TASK, frames_per_drive)))
            tasks.append((str(out), date, seed, drive_id, frames_per_drive, frames, depth_split))
        for frame in range(frames_per_drive):
            entry = f'{date}/{name} {frame}'
            if test:
                lists['eigen/test'].append(entry + ' l\n')
            elif 0 < frame < frames_per_drive - 1:
                key = 'eigen_zhou/val' if frame % 10 == 5 else 'eigen_zhou/train'
                lists[key] += [entry + ' l\n', entry + ' r\n']
    for key, lines in lists.items():
        path = out / 'splits' / f'{key}_files.txt'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(''.join(lines))
    points = run_parallel(_write_drive_frames, tasks, workers, 'synthetic-kitti-raw', progress,
                          sizes=[len(task[5]) for task in tasks])
    return {'drives': num_drives, 'frames': num_drives * frames_per_drive, 'points': int(sum(points))}
