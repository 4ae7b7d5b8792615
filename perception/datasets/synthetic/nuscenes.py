"""nuScenes v1.0 database: the 13 JSON tables, 6 camera JPEGs and a LIDAR_TOP sweep per sample.

Layout written under ``out_dir`` (the devkit's ``dataroot``)::

    <version>/{attribute,calibrated_sensor,category,ego_pose,instance,log,map,sample,
               sample_annotation,sample_data,scene,sensor,visibility}.json
    <version>/splits.json       {"synth_train": [scene names], "synth_val": [scene names]}
    maps/<token>.png            placeholder masks (the devkit only checks that they exist)
    samples/CAM_*/<log>__CAM_*__<timestamp>.jpg
    samples/LIDAR_TOP/<log>__LIDAR_TOP__<timestamp>.pcd.bin   float32 (N, 5): x, y, z, intensity, ring

Custom split names are read from ``splits.json`` by ``nuscenes-devkit`` >= 1.1.11
(``DetectionEval(..., eval_set='synth_val')``). Conventions follow nuScenes: the ego frame has its
origin at the rear axle on the ground; the sensor calibrations are those of a real nuScenes car; samples
(keyframes, no sweeps) are 0.5 s apart and each camera fires a few ms after the LiDAR with its own ego
pose; boxes have ``size = [w, l, h]`` and yaw-only ``[w, x, y, z]`` quaternions; tokens are md5 digests
of descriptive strings, so a seed regenerates identical files. ``num_lidar_pts`` counts the written
LiDAR points that hit the object; ``num_radar_pts`` is a synthetic count (no radar is simulated)
derived from it. ``visibility`` bins the fraction of the object's silhouette visible over all 6
cameras.
"""
import hashlib
import json
import os
from pathlib import Path
from typing import Dict, List, Tuple, Union

import cv2
import numpy as np

from .geometry import HDL32_ELEVATIONS, make_pose, matrix_quaternion, quaternion_matrix, rot_z, yaw_quaternion
from .labels import box_corners, project_box, visible_counts
from .parallel import frame_rng, prepare_output_dir, run_parallel
from .render import World
from .scene import NUSCENES_CLASSES, Ego, sample_objects, sample_street

SAMPLE_PERIOD_US = 500_000
ANNOTATION_RANGE = 60.0
LIDAR_AZIMUTH_STEPS = 1084
IMAGE_SIZE = (1600, 900)
VISIBILITY_STRIDE = 4

# A real nuScenes car (n015 log): (rotation [w, x, y, z], translation in the ego frame, (f, cx, cy)).
RIG = {
    'LIDAR_TOP': ([0.707796, -0.006492, 0.010646, -0.706307], [0.9437, 0.0, 1.8402], None),
    'CAM_FRONT': ([0.499802, -0.503032, 0.49978, -0.497371], [1.7008, 0.0159, 1.511], (1266.42, 816.27, 491.51)),
    'CAM_FRONT_RIGHT': ([0.206035, -0.202694, 0.682451, -0.671361], [1.5508, -0.4934, 1.4957],
                        (1260.85, 807.97, 495.33)),
    'CAM_BACK_RIGHT': ([0.12281, -0.132401, -0.700431, 0.690496], [1.0149, -0.4806, 1.5624],
                       (1259.51, 807.25, 501.2)),
    'CAM_BACK': ([0.503787, -0.497402, -0.494185, 0.50455], [0.0283, 0.0035, 1.5791], (809.22, 829.22, 481.78)),
    'CAM_BACK_LEFT': ([0.692419, -0.703162, -0.116483, 0.112033], [1.0357, 0.4848, 1.591],
                      (1256.74, 792.11, 492.78)),
    'CAM_FRONT_LEFT': ([0.675727, -0.673627, 0.21214, -0.211228], [1.5239, 0.4946, 1.5093],
                       (1272.6, 826.62, 479.75)),
}
CAMERAS = [c for c in RIG if c.startswith('CAM')]
# Milliseconds after the LiDAR timestamp at which each camera fires (it sweeps past them in turn).
CAMERA_DELAY_MS = {'CAM_FRONT': 12, 'CAM_FRONT_RIGHT': 20, 'CAM_BACK_RIGHT': 29, 'CAM_BACK': 37,
                   'CAM_BACK_LEFT': 45, 'CAM_FRONT_LEFT': 4}

LOGS = [('n008-2024-01-08-10-00-00-0500', 'boston-seaport', '2024-01-08'),
        ('n015-2024-01-09-10-00-00+0800', 'singapore-onenorth', '2024-01-09')]
CATEGORIES = [
    'animal', 'human.pedestrian.adult', 'human.pedestrian.child', 'human.pedestrian.construction_worker',
    'human.pedestrian.personal_mobility', 'human.pedestrian.police_officer', 'human.pedestrian.stroller',
    'human.pedestrian.wheelchair', 'movable_object.barrier', 'movable_object.debris',
    'movable_object.pushable_pullable', 'movable_object.trafficcone', 'static_object.bicycle_rack',
    'vehicle.bicycle', 'vehicle.bus.bendy', 'vehicle.bus.rigid', 'vehicle.car', 'vehicle.construction',
    'vehicle.emergency.ambulance', 'vehicle.emergency.police', 'vehicle.motorcycle', 'vehicle.trailer',
    'vehicle.truck'
]
ATTRIBUTES = ['vehicle.moving', 'vehicle.stopped', 'vehicle.parked', 'cycle.with_rider', 'cycle.without_rider',
              'pedestrian.sitting_lying_down', 'pedestrian.standing', 'pedestrian.moving']
VISIBILITY = [('1', 'v0-40', 0.0), ('2', 'v40-60', 0.4), ('3', 'v60-80', 0.6), ('4', 'v80-100', 0.8)]
CLASS_WEIGHTS = {
    'vehicle.car': 0.42, 'human.pedestrian.adult': 0.2, 'vehicle.truck': 0.06, 'vehicle.bus.rigid': 0.03,
    'vehicle.trailer': 0.02, 'vehicle.construction': 0.02, 'vehicle.motorcycle': 0.05, 'vehicle.bicycle': 0.05,
    'movable_object.trafficcone': 0.08, 'movable_object.barrier': 0.07
}


def token(*parts) -> str:
    """32-hex token: the md5 of the parts, so that a seed always gives the same tokens."""
    return hashlib.md5('/'.join(str(p) for p in parts).encode()).hexdigest()


def sensor_pose(channel: str) -> np.ndarray:
    """(4, 4) sensor -> ego pose of ``channel``."""
    rotation, translation, _ = RIG[channel]
    return make_pose(quaternion_matrix(rotation), translation)


def camera_intrinsic(channel: str, scale: float) -> np.ndarray:
    f, cx, cy = RIG[channel][2]
    return np.array([[f * scale, 0., cx * scale], [0., f * scale, cy * scale], [0., 0., 1.]])


def attribute_of(name: str, speed: float) -> List[str]:
    """The nuScenes attribute of an object (none for cones and barriers)."""
    if name.startswith('vehicle.') and name not in ('vehicle.bicycle', 'vehicle.motorcycle'):
        return ['vehicle.moving' if speed > 0.2 else 'vehicle.parked']
    if name == 'vehicle.motorcycle':
        return ['cycle.with_rider']
    if name == 'vehicle.bicycle':
        return ['cycle.without_rider']
    if name.startswith('human.'):
        return ['pedestrian.moving' if speed > 0.2 else 'pedestrian.standing']
    return []


def radar_points(name: str, num_lidar_pts: int) -> int:
    """A synthetic radar return count: metal objects reflect, people and cones barely."""
    per_point = {'movable_object.trafficcone': 0.0, 'human.pedestrian.adult': 0.02,
                 'movable_object.barrier': 0.02}.get(name, 0.08)
    return int(min(np.ceil(num_lidar_pts * per_point), 40))


class Scene:
    """One scene: a street in its own frame, placed in the global map frame by ``street2global``."""

    def __init__(self, seed: int, index: int, num_samples: int):
        rng = frame_rng(seed, 2, index)
        self.index = index
        self.num_samples = num_samples
        self.log = LOGS[index % len(LOGS)]
        self.street2global = make_pose(rot_z(rng.uniform(-np.pi, np.pi)),
                                       [rng.uniform(300, 2000), rng.uniform(300, 2000), 0.0])
        self.ego = Ego(speed=rng.uniform(0.0, 8.0) if rng.random() < 0.85 else 0.0,
                       yaw_amp=rng.uniform(0.0, 0.03), yaw_period=rng.uniform(8, 16), offset=1.3)
        duration = num_samples * SAMPLE_PERIOD_US * 1e-6
        travel = self.ego.speed * duration
        self.street = sample_street(rng, (-90.0, travel + 90.0))
        base = 1_704_700_000_000_000 + index * 3_600_000_000
        self.timestamps = [base + k * SAMPLE_PERIOD_US + int(rng.integers(-2500, 2501)) for k in range(num_samples)]
        times = [(t - base) * 1e-6 for t in self.timestamps]
        self.t0 = base

        def near(rng):
            # One of each class near the path, so that every class has evaluable boxes in every scene.
            return rng.uniform(-10.0, 0.5 * travel + 22.0), rng.uniform(-8.0, 8.0)

        def anywhere(rng):
            return rng.uniform(-60.0, travel + 60.0), rng.uniform(-12.0, 12.0)

        self.objects = sample_objects(rng, self.street, NUSCENES_CLASSES, CLASS_WEIGHTS, int(rng.integers(25, 45)),
                                      self.ego, times, anywhere, required=list(CLASS_WEIGHTS), required_region=near)

    def time(self, timestamp: int) -> float:
        return (timestamp - self.t0) * 1e-6

    def ego2global(self, timestamp: int) -> np.ndarray:
        return self.street2global @ self.ego.pose_at(self.time(timestamp))


def _write_scene(task: Tuple[str, str, int, int, int, float]) -> Dict[str, list]:
    """Render and write one scene; return its rows of the per-scene tables."""
    out, version, seed, index, num_samples, scale = task
    scene = Scene(seed, index, num_samples)
    logfile = scene.log[0]
    rows = {k: [] for k in ('scene', 'sample', 'sample_data', 'ego_pose', 'sample_annotation', 'instance')}
    scene_token = token(version, seed, 'scene', index)
    sample_tokens = [token(version, seed, 'sample', index, k) for k in range(num_samples)]
    width, height = round(IMAGE_SIZE[0] * scale), round(IMAGE_SIZE[1] * scale)
    last_data: Dict[str, dict] = {}
    annotations: Dict[int, List[dict]] = {}
    for k, (sample_token, stamp) in enumerate(zip(sample_tokens, scene.timestamps)):
        rows['sample'].append({'token': sample_token, 'timestamp': stamp, 'scene_token': scene_token,
                               'prev': sample_tokens[k - 1] if k else '',
                               'next': sample_tokens[k + 1] if k + 1 < num_samples else ''})
        t = scene.time(stamp)
        world = World(scene.street, scene.objects, t, ground_center=scene.ego.pose_at(t)[:2, 3])
        lidar_ego = scene.ego.pose_at(t)
        scan = world.lidar(lidar_ego @ sensor_pose('LIDAR_TOP'), HDL32_ELEVATIONS, LIDAR_AZIMUTH_STEPS)
        points = np.concatenate([scan.points, np.round(scan.intensity[:, None] * 255), scan.ring[:, None]], axis=1)
        filename = f'samples/LIDAR_TOP/{logfile}__LIDAR_TOP__{stamp}.pcd.bin'
        points.astype(np.float32).tofile(Path(out) / filename)
        _add_sample_data(rows, last_data, version, seed, scene, 'LIDAR_TOP', sample_token, stamp, filename, 0, 0)
        seen = np.zeros(len(scene.objects))
        silhouette = np.zeros(len(scene.objects))
        for channel in CAMERAS:
            cam_stamp = stamp + 1000 * CAMERA_DELAY_MS[channel]
            tc = scene.time(cam_stamp)
            cam_world = World(scene.street, scene.objects, tc, ground_center=scene.ego.pose_at(tc)[:2, 3])
            cam2street = scene.ego.pose_at(tc) @ sensor_pose(channel)
            K = camera_intrinsic(channel, scale)
            view = cam_world.render(K, cam2street, width, height)
            filename = f'samples/{channel}/{logfile}__{channel}__{cam_stamp}.jpg'
            cv2.imwrite(str(Path(out) / filename), view.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
            _add_sample_data(rows, last_data, version, seed, scene, channel, sample_token, cam_stamp, filename,
                             width, height)
            street2cam = np.linalg.inv(cam2street)
            P = np.hstack([K, np.zeros((3, 1))])
            for i, obj in enumerate(scene.objects):
                center, yaw = obj.pose_at(tc)
                corners = box_corners(center, obj.size, yaw) @ street2cam[:3, :3].T + street2cam[:3, 3]
                box = project_box(corners, P)
                if box is None:
                    continue
                box = np.clip(box, 0, [width - 1, height - 1, width - 1, height - 1])
                if box[2] > box[0] and box[3] > box[1]:
                    s, n = visible_counts(obj.track_id, cam_world, view.instance, box, K, cam2street,
                                          VISIBILITY_STRIDE)
                    seen[i] += s
                    silhouette[i] += n
        hits = np.bincount(scan.instance[scan.instance > 0], minlength=len(scene.objects) + 1)
        ego_xy = lidar_ego[:2, 3]
        for i, obj in enumerate(scene.objects):
            center, yaw = obj.pose_at(t)
            if np.hypot(*(center[:2] - ego_xy)) > ANNOTATION_RANGE:
                continue
            visible = seen[i] / silhouette[i] if silhouette[i] else 0.0
            annotations.setdefault(i, []).append(
                _annotation(scene, obj, sample_token, center, yaw, int(hits[obj.track_id + 1]), visible))
    for i, anns in annotations.items():
        _link_track(rows, version, seed, index, scene.objects[i], anns)
    rows['scene'].append({
        'token': scene_token, 'log_token': token('log', scene.log[0]), 'nbr_samples': num_samples,
        'first_sample_token': sample_tokens[0], 'last_sample_token': sample_tokens[-1],
        'name': f'scene-{index + 1:04d}', 'description': f'synthetic street, {len(scene.objects)} objects'})
    return rows


def _annotation(scene: Scene, obj, sample_token: str, center: np.ndarray, yaw: float, num_lidar_pts: int,
                visible: float) -> dict:
    l, w, h = obj.size
    centre = scene.street2global[:3, :3] @ (center + [0., 0., h / 2]) + scene.street2global[:3, 3]
    global_yaw = yaw + np.arctan2(scene.street2global[1, 0], scene.street2global[0, 0])
    level = [v[0] for v in VISIBILITY if visible >= v[2]][-1]
    return {'sample_token': sample_token, 'visibility_token': level,
            'attribute_tokens': [token('attribute', a) for a in attribute_of(obj.name, obj.speed)],
            'translation': [float(v) for v in centre], 'size': [float(w), float(l), float(h)],
            'rotation': yaw_quaternion(global_yaw), 'num_lidar_pts': num_lidar_pts,
            'num_radar_pts': radar_points(obj.name, num_lidar_pts)}


def _link_track(rows: Dict[str, list], version: str, seed: int, index: int, obj, anns: List[dict]) -> None:
    instance_token = token(version, seed, 'instance', index, obj.track_id)
    tokens = [token(version, seed, 'ann', index, obj.track_id, a['sample_token']) for a in anns]
    for j, ann in enumerate(anns):
        rows['sample_annotation'].append({'token': tokens[j], 'instance_token': instance_token, **ann,
                                          'prev': tokens[j - 1] if j else '',
                                          'next': tokens[j + 1] if j + 1 < len(anns) else ''})
    rows['instance'].append({'token': instance_token, 'category_token': token('category', obj.name),
                             'nbr_annotations': len(anns), 'first_annotation_token': tokens[0],
                             'last_annotation_token': tokens[-1]})


def _add_sample_data(rows, last_data, version, seed, scene: Scene, channel, sample_token, stamp, filename,
                     width, height) -> None:
    sd_token = token(version, seed, 'sample_data', scene.index, channel, stamp)
    ego2global = scene.ego2global(stamp)
    rows['ego_pose'].append({'token': sd_token, 'timestamp': stamp,
                             'rotation': matrix_quaternion(ego2global[:3, :3]),
                             'translation': [float(v) for v in ego2global[:3, 3]]})
    record = {'token': sd_token, 'sample_token': sample_token, 'ego_pose_token': sd_token,
              'calibrated_sensor_token': token('calibrated_sensor', scene.log[0], channel), 'timestamp': stamp,
              'fileformat': 'pcd' if channel == 'LIDAR_TOP' else 'jpg', 'is_key_frame': True,
              'height': height, 'width': width, 'filename': filename, 'prev': '', 'next': ''}
    if channel in last_data:
        record['prev'] = last_data[channel]['token']
        last_data[channel]['next'] = sd_token
    last_data[channel] = record
    rows['sample_data'].append(record)


def _static_tables(scale: float) -> Dict[str, list]:
    """The tables that do not depend on the scenes."""
    tables = {
        'category': [{'token': token('category', n), 'name': n, 'description': f'Synthetic: {n}.',
                      'index': i + 1} for i, n in enumerate(CATEGORIES)],
        'attribute': [{'token': token('attribute', n), 'name': n, 'description': f'Synthetic: {n}.'}
                      for n in ATTRIBUTES],
        'visibility': [{'token': t, 'level': level,
                        'description': f'visibility of whole object is between {level[1:].replace("-", " and ")}%'}
                       for t, level, _ in VISIBILITY],
        'sensor': [{'token': token('sensor', c), 'channel': c, 'modality': 'lidar' if c == 'LIDAR_TOP' else 'camera'}
                   for c in RIG],
        'log': [], 'map': [], 'calibrated_sensor': [],
    }
    for logfile, location, date in LOGS:
        log_token = token('log', logfile)
        tables['log'].append({'token': log_token, 'logfile': logfile, 'vehicle': logfile[:4],
                              'date_captured': date, 'location': location})
        map_token = token('map', location)
        tables['map'].append({'category': 'semantic_prior', 'token': map_token,
                              'filename': f'maps/{map_token}.png', 'log_tokens': [log_token]})
        for channel, (rotation, translation, intrinsic) in RIG.items():
            K = camera_intrinsic(channel, scale).tolist() if intrinsic else []
            tables['calibrated_sensor'].append({
                'token': token('calibrated_sensor', logfile, channel), 'sensor_token': token('sensor', channel),
                'translation': translation, 'rotation': rotation, 'camera_intrinsic': K})
    return tables


def generate_nuscenes(out_dir: Union[str, os.PathLike], num_scenes: int = 10, num_val_scenes: int = 2,
                      samples_per_scene: int = 20, seed: int = 0, version: str = 'v1.0-synth',
                      image_scale: float = 1.0, workers: int = 2, force: bool = False,
                      progress: bool = True) -> Dict[str, int]:
    """Write a nuScenes database of ``num_scenes`` scenes to ``out_dir`` (the devkit's ``dataroot``).

    The last ``num_val_scenes`` scenes form split ``synth_val``, the others ``synth_train``.
    ``image_scale`` shrinks the 1600x900 cameras (intrinsics scale with them) for quick runs.

    Returns:
        counts: ``scenes``, ``samples``, ``annotations`` and ``instances``.
    """
    if not 0 <= num_val_scenes <= num_scenes:
        raise ValueError(f'num_val_scenes must be in [0, {num_scenes}], got {num_val_scenes}')
    out = prepare_output_dir(out_dir, force, ('samples', 'maps', version, 'nuscenes_infos_*.pkl'))
    for channel in RIG:
        (out / 'samples' / channel).mkdir(parents=True)
    (out / 'maps').mkdir()
    (out / version).mkdir()
    tables = _static_tables(image_scale)
    for record in tables['map']:
        cv2.imwrite(str(out / record['filename']), np.zeros((32, 32), np.uint8))
    tasks = [(str(out), version, seed, i, samples_per_scene, image_scale) for i in range(num_scenes)]
    per_scene = run_parallel(_write_scene, tasks, workers, 'synthetic-nuscenes', progress,
                             sizes=[samples_per_scene] * num_scenes)
    for rows in per_scene:
        for name, records in rows.items():
            tables.setdefault(name, []).extend(records)
    for name, records in tables.items():
        with open(out / version / f'{name}.json', 'w') as f:
            json.dump(records, f, indent=0)
    names = [s['name'] for s in tables['scene']]
    split = num_scenes - num_val_scenes
    with open(out / version / 'splits.json', 'w') as f:
        json.dump({'synth_train': names[:split], 'synth_val': names[split:]}, f, indent=0)
    return {'scenes': num_scenes, 'samples': len(tables['sample']),
            'annotations': len(tables['sample_annotation']), 'instances': len(tables['instance'])}
