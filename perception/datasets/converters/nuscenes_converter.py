"""nuScenes database (v1.0 JSON tables) -> info files in the mmdet3d 1.x format (``metainfo`` + ``data_list``).

mmdet3d ships its converter only in its repository (``tools/dataset_converters``), and it accepts only the three
official versions and the official scene splits. This one writes what mmdet3d 1.4's ``create_data.py nuscenes``
followed by ``update_infos_to_v2.py`` writes (checked against mmdet3d's own info files in the tests), for any
version name and any split of its ``splits.json``, and adds what a temporal camera detector (StreamPETR, OPEN)
needs. Differences from mmdet3d, all deliberate:

* a missing table, a split scene that is not in the database, or a sample whose LiDAR, camera or sweep file is
  absent raises an error naming it (mmdet3d silently drops scenes whose first LiDAR file is missing);
* samples are written scene by scene in time order (mmdet3d follows the ``sample`` table, which the official
  release happens to store in that order), so consecutive samples of a scene are consecutive in the file;
* ``cam_instances`` clip the projected boxes to each camera's own image size (mmdet3d assumes 1600x900);
* sweep ``lidar_path``s are relative to the data root (``sweeps/LIDAR_TOP/...``), not to the working directory;
* extra keys: ``scene_token``, ``scene_name``, ``frame_idx`` (index in its scene), ``prev`` / ``next`` (sample
  tokens, '' at the ends of a scene); per camera ``ego2global`` (the ego pose at the camera's own timestamp),
  ``height`` and ``width``; per instance ``instance_token``; in ``metainfo`` the ``split`` name (the metric's
  default evaluation set).

nuscenes-devkit (and mmdet3d's helpers that import it) are imported where used: importing ``perception.datasets``
should not load the devkit and its plotting dependencies.

Matrices are 4x4 nested lists of float32 values and timestamps are seconds, as in mmdet3d's files; ``cam2img`` is
the 3x3 intrinsics. Boxes (``bbox_3d``) are ``x, y, z, l, w, h, yaw`` in the LiDAR frame with the gravity centre,
velocities ``vx, vy`` in the LiDAR frame (NaN where the devkit has no velocity, as in mmdet3d's files).
"""
import json
import os
import os.path as osp
import pickle
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log
from mmengine.utils import track_iter_progress
from pyquaternion import Quaternion

from perception.fileio import atomic_write

NUSCENES_CLASSES = ('car', 'truck', 'trailer', 'bus', 'construction_vehicle', 'bicycle', 'motorcycle',
                    'pedestrian', 'traffic_cone', 'barrier')
# mmdet3d's attribute order (``attr_label`` of ``cam_instances``); 'None' is an annotation without attribute.
NUSCENES_ATTRIBUTES = ('cycle.with_rider', 'cycle.without_rider', 'pedestrian.moving', 'pedestrian.standing',
                       'pedestrian.sitting_lying_down', 'vehicle.moving', 'vehicle.parked', 'vehicle.stopped',
                       'None')
CAMERAS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')
TABLES = ('attribute', 'calibrated_sensor', 'category', 'ego_pose', 'instance', 'log', 'map', 'sample',
          'sample_annotation', 'sample_data', 'scene', 'sensor', 'visibility')
# The official splits of each official version: output name -> devkit split name.
OFFICIAL_SPLITS = {
    'v1.0-trainval': {'train': 'train', 'val': 'val'},
    'v1.0-mini': {'train': 'mini_train', 'val': 'mini_val'},
    'v1.0-test': {'test': 'test'},
}
INFO_VERSION = '1.1'


def pose_matrix(rotation: Sequence[float], translation: Optional[Sequence[float]] = None) -> np.ndarray:
    """(4, 4) float64 pose of a ``[w, x, y, z]`` quaternion and a translation."""
    matrix = np.eye(4)
    matrix[:3, :3] = Quaternion(rotation).rotation_matrix
    if translation is not None:
        matrix[:3, 3] = translation
    return matrix


def _f32_list(matrix: np.ndarray) -> list:
    return np.asarray(matrix).astype(np.float32).tolist()


def check_database(root: str, version: str) -> None:
    """Raise FileNotFoundError naming the first of the 13 tables missing under ``root/version``."""
    table_root = osp.join(root, version)
    if not osp.isdir(table_root):
        raise FileNotFoundError(f'{table_root}: no such folder (the tables of version {version!r})')
    for table in TABLES:
        path = osp.join(table_root, f'{table}.json')
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path}: missing table {table!r} of nuScenes version {version!r}')


def resolve_splits(root: str, version: str, split_file: Optional[str] = None,
                   splits: Optional[Dict[str, str]] = None) -> Dict[str, Tuple[str, List[str]]]:
    """The scenes of each output split: ``{output name: (split name, [scene names])}``.

    Official versions use the devkit's official splits (``train``/``val``, ``mini_train``/``mini_val``, ``test``)
    unless a split file is given. Other versions read a JSON file ``{split name: [scene names]}`` (default
    ``root/version/splits.json``, the devkit's custom-split file). Without ``splits``, its ``train``/``val``/``test``
    keys, or else its unique keys ending in ``_train``/``_val``/``_test`` (``synth_train``), give the outputs.

    Args:
        root: data root.
        version: table folder name.
        split_file: JSON split definition.
        splits: output name -> split name, e.g. ``{'train': 'synth_train', 'val': 'synth_val'}``.
    """
    if split_file is None and version in OFFICIAL_SPLITS:
        from nuscenes.utils import splits as official
        mapping = splits or OFFICIAL_SPLITS[version]
        table = official.create_splits_scenes()
        unknown = sorted(set(mapping.values()) - set(table))
        if unknown:
            raise ValueError(f'unknown official split(s) {unknown}; official ones: {sorted(table)}')
        return {out: (name, list(table[name])) for out, name in mapping.items()}
    split_file = split_file or osp.join(root, version, 'splits.json')
    if not osp.isfile(split_file):
        raise FileNotFoundError(f'{split_file}: no split file; version {version!r} is not official, so its scene '
                                'splits must be given as JSON {split name: [scene names]} (--split-file)')
    with open(split_file) as f:
        table = json.load(f)
    if not isinstance(table, dict) or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in table.values()):
        raise ValueError(f'{split_file}: expected a JSON object {{split name: [scene names]}}')
    if splits is None:
        splits = {}
        for out in ('train', 'val', 'test'):
            if out in table:
                splits[out] = out
                continue
            suffixed = [name for name in table if name.endswith(f'_{out}')]
            if len(suffixed) > 1:
                raise ValueError(f'{split_file}: several splits end in _{out} ({suffixed}); choose one with --splits')
            if suffixed:
                splits[out] = suffixed[0]
        if not splits:
            raise ValueError(f'{split_file}: no split named train/val/test or *_train/*_val/*_test among '
                             f'{sorted(table)}; choose with --splits OUT=SPLIT')
    unknown = sorted(set(splits.values()) - set(table))
    if unknown:
        raise ValueError(f'{split_file}: no split(s) {unknown}; it defines {sorted(table)}')
    return {out: (name, list(table[name])) for out, name in splits.items()}


def _data_file(nusc, sd_token: str, what: str) -> str:
    """Root-relative path of a sample_data file, which must exist (FileNotFoundError naming ``what``)."""
    filename = nusc.get('sample_data', sd_token)['filename']
    path = osp.join(nusc.dataroot, filename)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: missing file of {what}')
    return filename


def _sensor_record(nusc, sd_token: str) -> Tuple[dict, np.ndarray, np.ndarray]:
    """A sample_data record with its sensor2ego and ego2global poses, float64."""
    sd = nusc.get('sample_data', sd_token)
    cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
    pose = nusc.get('ego_pose', sd['ego_pose_token'])
    return sd, pose_matrix(cs['rotation'], cs['translation']), pose_matrix(pose['rotation'], pose['translation'])


def sensor2lidar(sensor2ego: np.ndarray, sensor_ego2global: np.ndarray, lidar2ego: np.ndarray,
                 ego2global: np.ndarray) -> np.ndarray:
    """(4, 4) sensor frame (at its own time) -> LiDAR frame of the keyframe, through the global frame."""
    return np.linalg.inv(ego2global @ lidar2ego) @ sensor_ego2global @ sensor2ego


def _camera_instances(nusc, sd_token: str, global_velocities: Dict[str, np.ndarray]) -> List[dict]:
    """mmdet3d's ``cam_instances`` of one camera keyframe (its ``get_nuscenes_2d_boxes``), with the projected
    boxes clipped to this camera's image size."""
    from mmdet3d.datasets.convert_utils import generate_record, post_process_coords
    from mmdet3d.structures import points_cam2img
    from nuscenes.utils.geometry_utils import view_points

    sd = nusc.get('sample_data', sd_token)
    cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
    pose = nusc.get('ego_pose', sd['ego_pose_token'])
    intrinsic = np.array(cs['camera_intrinsic'])
    to_cam = (Quaternion(pose['rotation']).rotation_matrix @ Quaternion(cs['rotation']).rotation_matrix).T
    records = []
    for ann_token in nusc.get('sample', sd['sample_token'])['anns']:
        ann = nusc.get('sample_annotation', ann_token)
        box = nusc.get_box(ann_token)
        box.translate(-np.array(pose['translation']))
        box.rotate(Quaternion(pose['rotation']).inverse)
        box.translate(-np.array(cs['translation']))
        box.rotate(Quaternion(cs['rotation']).inverse)
        corners = box.corners()
        corners = corners[:, corners[2] > 0]
        coords = view_points(corners, intrinsic, True).T[:, :2].tolist()
        clipped = post_process_coords(coords, (sd['width'], sd['height']))
        if clipped is None:
            continue
        record = generate_record(ann, *clipped, 'nuscenes')
        if record is None:
            continue
        center = box.center.reshape(1, 3)
        center_2d = points_cam2img(center, intrinsic, with_depth=True).squeeze().tolist()
        if center_2d[2] <= 0:
            continue
        dims = box.wlh[[1, 2, 0]]
        velocity = global_velocities[ann_token] @ to_cam.T
        attrs = ann['attribute_tokens']
        attr = nusc.get('attribute', attrs[0])['name'] if attrs else 'None'
        record.update(bbox_3d=box.center.tolist() + dims.tolist() + [-box.orientation.yaw_pitch_roll[0]],
                      velocity=velocity[0::2].tolist(), center_2d=center_2d[:2], depth=center_2d[2],
                      attr_label=NUSCENES_ATTRIBUTES.index(attr))
        records.append(record)
    return records


def _instances(nusc, sample: dict, lidar_token: str, ego2global: np.ndarray,
               lidar2ego: np.ndarray) -> Tuple[List[dict], set, Dict[str, np.ndarray]]:
    """The LiDAR-frame ``instances`` of a sample, the names without a label, and the global velocities
    ``(vx, vy, 0)`` per annotation token."""
    from mmdet3d.datasets.convert_utils import NuScenesNameMapping

    _, boxes, _ = nusc.get_sample_data(lidar_token)
    instances, ignored, velocities = [], set(), {}
    for ann_token, box in zip(sample['anns'], boxes):
        ann = nusc.get('sample_annotation', ann_token)
        velocities[ann_token] = np.array([*nusc.box_velocity(ann_token)[:2], 0.0])
        velocity = velocities[ann_token] @ np.linalg.inv(ego2global[:3, :3]).T @ np.linalg.inv(lidar2ego[:3, :3]).T
        name = NuScenesNameMapping.get(box.name, box.name)
        if name in NUSCENES_CLASSES:
            label = NUSCENES_CLASSES.index(name)
        else:
            label = -1
            ignored.add(name)
        instances.append(dict(
            bbox_3d=np.array([*box.center, *box.wlh[[1, 0, 2]], box.orientation.yaw_pitch_roll[0]]).tolist(),
            bbox_label=label, bbox_label_3d=label, velocity=velocity[:2].tolist(),
            num_lidar_pts=ann['num_lidar_pts'], num_radar_pts=ann['num_radar_pts'],
            bbox_3d_isvalid=bool(ann['num_lidar_pts'] + ann['num_radar_pts'] > 0),
            instance_token=ann['instance_token']))
    return instances, ignored, velocities


def get_sample_info(nusc, sample: dict, frame_idx: int, scene: dict, max_sweeps: int = 10,
                    with_annotations: bool = True) -> Tuple[dict, set]:
    """The info of one sample, and the category names of its annotations that have no label.

    Raises FileNotFoundError naming the sample when its LiDAR, camera or sweep files are absent, and KeyError
    naming it when a camera keyframe is missing.
    """
    what = f'sample {sample["token"]} (scene {scene["name"]})'
    if 'LIDAR_TOP' not in sample['data']:
        raise KeyError(f'{what}: no LIDAR_TOP keyframe in sample_data')
    lidar_token = sample['data']['LIDAR_TOP']
    lidar_path = _data_file(nusc, lidar_token, f'{what}, LIDAR_TOP')
    lidar_sd, lidar2ego, ego2global = _sensor_record(nusc, lidar_token)
    info = dict(
        sample_idx=None, token=sample['token'], timestamp=sample['timestamp'] / 1e6, ego2global=_f32_list(ego2global),
        images={},
        lidar_points=dict(num_pts_feats=5, lidar_path=osp.basename(lidar_path), lidar2ego=_f32_list(lidar2ego)),
        lidar_sweeps=[], instances=[],
        scene_token=scene['token'], scene_name=scene['name'], frame_idx=frame_idx, prev=sample['prev'],
        next=sample['next'])
    for cam in CAMERAS:
        if cam not in sample['data']:
            raise KeyError(f'{what}: no {cam} keyframe in sample_data')
        sd_token = sample['data'][cam]
        img_path = _data_file(nusc, sd_token, f'{what}, {cam}')
        sd, cam2ego, cam_ego2global = _sensor_record(nusc, sd_token)
        cam2lidar = sensor2lidar(cam2ego, cam_ego2global, lidar2ego, ego2global)
        intrinsic = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])['camera_intrinsic']
        info['images'][cam] = dict(
            img_path=osp.basename(img_path), cam2img=np.asarray(intrinsic, dtype=np.float64).tolist(),
            sample_data_token=sd_token, timestamp=sd['timestamp'] / 1e6, cam2ego=_f32_list(cam2ego),
            lidar2cam=_f32_list(np.linalg.inv(cam2lidar)), ego2global=_f32_list(cam_ego2global),
            height=sd['height'], width=sd['width'])
    sweep_sd = lidar_sd
    while len(info['lidar_sweeps']) < max_sweeps and sweep_sd['prev']:
        sweep_sd, sweep2ego, sweep_ego2global = _sensor_record(nusc, sweep_sd['prev'])
        sweep2lidar = sensor2lidar(sweep2ego, sweep_ego2global, lidar2ego, ego2global)
        info['lidar_sweeps'].append(dict(
            lidar_points=dict(lidar_path=_data_file(nusc, sweep_sd['token'], f'{what}, LIDAR_TOP sweep'),
                              lidar2ego=_f32_list(sweep2ego), lidar2sensor=_f32_list(np.linalg.inv(sweep2lidar))),
            ego2global=_f32_list(sweep_ego2global), timestamp=sweep_sd['timestamp'] / 1e6,
            sample_data_token=sweep_sd['token']))
    ignored = set()
    if with_annotations:
        info['instances'], ignored, velocities = _instances(nusc, sample, lidar_token, ego2global, lidar2ego)
        info['cam_instances'] = {cam: _camera_instances(nusc, info['images'][cam]['sample_data_token'], velocities)
                                 for cam in CAMERAS}
    if not info['lidar_sweeps']:
        del info['lidar_sweeps']
    return info, ignored


def scene_samples(nusc, scene: dict) -> List[dict]:
    """The samples of a scene in time order (its ``first_sample_token`` followed along ``next``)."""
    samples, token = [], scene['first_sample_token']
    while token:
        sample = nusc.get('sample', token)
        samples.append(sample)
        token = sample['next']
    return samples


def _dump(obj, path: str) -> None:

    def write(tmp: str) -> None:
        with open(tmp, 'wb') as f:
            pickle.dump(obj, f)

    atomic_write(path, write)


def create_nuscenes_infos(root: str, version: str = 'v1.0-trainval', out_dir: Optional[str] = None,
                          prefix: str = 'nuscenes', split_file: Optional[str] = None,
                          splits: Optional[Dict[str, str]] = None, max_sweeps: int = 10) -> Dict[str, str]:
    """Write ``{prefix}_infos_{train,val}.pkl`` (``test`` for a test version) for the database at ``root``.

    Args:
        root: data root (the devkit's ``dataroot``), holding ``version/`` and the sample files.
        version: table folder, official (``v1.0-trainval``, ``v1.0-mini``, ``v1.0-test``) or custom.
        out_dir: where to write (``root`` by default).
        prefix: file name prefix.
        split_file: JSON ``{split name: [scene names]}``; default: the official splits of an official version,
            ``root/version/splits.json`` otherwise (see :func:`resolve_splits`).
        splits: output name -> split name of the split file.
        max_sweeps: LiDAR sweeps kept per sample (previous non-keyframes).

    Returns:
        dict output name -> path of the written file.
    """
    from nuscenes import NuScenes

    check_database(root, version)
    outputs = resolve_splits(root, version, split_file, splits)
    with open(osp.join(root, version, 'scene.json')) as f:
        known = {scene['name'] for scene in json.load(f)}
    for split, names in outputs.values():
        missing = [name for name in names if name not in known]
        if missing:
            raise KeyError(f'split {split!r} lists scene(s) {missing[:5]} that are not in {root}/{version}/scene.json')
    nusc = NuScenes(version=version, dataroot=root, verbose=False)
    scenes = {scene['name']: scene for scene in nusc.scene}
    with_annotations = not version.endswith('test')
    out_dir = root if out_dir is None else out_dir
    written = {}
    for out, (split, names) in outputs.items():
        tasks = [(scenes[name], k, sample) for name in names
                 for k, sample in enumerate(scene_samples(nusc, scenes[name]))]
        print_log(f'nuScenes {version} {out} (split {split}): {len(names)} scenes, {len(tasks)} samples', 'current')
        data_list, ignored = [], set()
        for scene, k, sample in track_iter_progress(tasks):
            info, names_without_label = get_sample_info(nusc, sample, k, scene, max_sweeps, with_annotations)
            info['sample_idx'] = len(data_list)
            data_list.append(info)
            ignored |= names_without_label
        categories = {name: i for i, name in enumerate(NUSCENES_CLASSES)}
        categories.update({name: -1 for name in sorted(ignored)})
        metainfo = dict(categories=categories, dataset='nuscenes', version=version, info_version=INFO_VERSION,
                        split=split)
        path = osp.join(out_dir, f'{prefix}_infos_{out}.pkl')
        os.makedirs(out_dir, exist_ok=True)
        _dump(dict(metainfo=metainfo, data_list=data_list), path)
        written[out] = path
        print_log(f'nuScenes {out} infos written to {path}', 'current')
    return written
