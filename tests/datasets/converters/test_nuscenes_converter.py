"""tools/create_data.py nuscenes: the converter against mmdet3d 1.4's own info files, on custom versions and splits.

mmdet3d's info files (the real keyframe of ``mmdet3d_demo/nuscenes`` and the two samples of
``mmdet3d_tests/nuscenes/nus_info.pkl``) come without their nuScenes tables, so the tests write tables that hold
those samples (poses, calibrations, annotations in the global frame, one earlier annotation per object so that the
devkit derives the same velocity), convert them, and compare every key and value with mmdet3d's.
"""
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pyquaternion import Quaternion

from perception.datasets.converters.nuscenes_converter import (CAMERAS, NUSCENES_ATTRIBUTES, NUSCENES_CLASSES,
                                                               create_nuscenes_infos, resolve_splits)

REPO_ROOT = Path(__file__).resolve().parents[3]
VERSION = 'v1.0-roundtrip'
CATEGORY_OF = {'car': 'vehicle.car', 'truck': 'vehicle.truck', 'trailer': 'vehicle.trailer',
               'bus': 'vehicle.bus.rigid', 'construction_vehicle': 'vehicle.construction',
               'bicycle': 'vehicle.bicycle', 'motorcycle': 'vehicle.motorcycle', 'pedestrian': 'human.pedestrian.adult',
               'traffic_cone': 'movable_object.trafficcone', 'barrier': 'movable_object.barrier',
               None: 'movable_object.debris'}


def quaternion(matrix) -> list:
    """[w, x, y, z] of the rotation nearest to a (float32-rounded) 3x3 matrix."""
    u, _, vt = np.linalg.svd(np.asarray(matrix, dtype=np.float64)[:3, :3])
    return list(Quaternion(matrix=u @ vt).elements)


def tables_from_infos(infos, root: Path, sweep_dir='sweeps/LIDAR_TOP'):
    """nuScenes tables (version ``VERSION``, one scene per info) holding the samples of mmdet3d infos, and empty
    sample files; returns the scene names."""
    t = {name: [] for name in ('attribute', 'calibrated_sensor', 'category', 'ego_pose', 'instance', 'log', 'map',
                               'sample', 'sample_annotation', 'sample_data', 'scene', 'sensor', 'visibility')}
    t['attribute'] = [dict(token=f'attr-{a}', name=a, description='') for a in NUSCENES_ATTRIBUTES[:-1]]
    t['category'] = [dict(token=f'cat-{c}', name=c, description='') for c in CATEGORY_OF.values()]
    t['visibility'] = [dict(token='4', level='v80-100', description='')]
    t['sensor'] = [dict(token=f'sensor-{c}', channel=c, modality='lidar' if c == 'LIDAR_TOP' else 'camera')
                   for c in ('LIDAR_TOP', ) + CAMERAS]
    t['log'] = [dict(token='log', logfile='log', vehicle='v', date_captured='2018-01-01', location='somewhere')]
    t['map'] = [dict(token='map', category='semantic_prior', filename='maps/map.png', log_tokens=['log'])]
    (root / 'maps').mkdir(parents=True)
    (root / 'maps/map.png').write_bytes(b'')

    def add_data(token, sample_token, channel, filename, stamp, sensor2ego, ego2global, key=True, prev=''):
        (root / filename).parent.mkdir(parents=True, exist_ok=True)
        (root / filename).write_bytes(b'')
        sensor2ego = np.asarray(sensor2ego, dtype=np.float64)
        t['calibrated_sensor'].append(dict(token=f'cs-{token}', sensor_token=f'sensor-{channel}',
                                           translation=list(sensor2ego[:3, 3]), rotation=quaternion(sensor2ego),
                                           camera_intrinsic=[]))
        ego2global = np.asarray(ego2global, dtype=np.float64)
        t['ego_pose'].append(dict(token=f'pose-{token}', timestamp=stamp, translation=list(ego2global[:3, 3]),
                                  rotation=quaternion(ego2global)))
        t['sample_data'].append(dict(token=token, sample_token=sample_token, ego_pose_token=f'pose-{token}',
                                     calibrated_sensor_token=f'cs-{token}', timestamp=stamp,
                                     fileformat='jpg' if channel.startswith('CAM') else 'pcd', is_key_frame=key,
                                     height=900 if channel.startswith('CAM') else 0,
                                     width=1600 if channel.startswith('CAM') else 0, filename=filename, prev=prev,
                                     next=''))
        if prev:
            next(d for d in t['sample_data'] if d['token'] == prev)['next'] = token
        return t['calibrated_sensor'][-1]

    names = []
    for k, info in enumerate(infos):
        stamp = round(info['timestamp'] * 1e6)
        scene, token = f'scene-{k}', info['token']
        names.append(scene)
        prev_token = f'before-{token}'
        t['scene'].append(dict(token=scene, name=scene, log_token='log', nbr_samples=1, description='',
                               first_sample_token=token, last_sample_token=token))
        # The sample half a second earlier that holds each object's previous annotation (in a scene of its own).
        t['scene'].append(dict(token=f'{scene}-before', name=f'{scene}-before', log_token='log', nbr_samples=1,
                               description='', first_sample_token=prev_token, last_sample_token=prev_token))
        t['sample'] += [dict(token=token, timestamp=stamp, scene_token=scene, prev='', next=''),
                        dict(token=prev_token, timestamp=stamp - 500000, scene_token=f'{scene}-before', prev='',
                             next='')]
        lidar2ego = np.asarray(info['lidar_points']['lidar2ego'])
        ego2global = np.asarray(info['ego2global'])
        sweep_prev = ''
        for j, sweep in reversed(list(enumerate(info.get('lidar_sweeps', [])))):
            sd_token = sweep['sample_data_token']
            add_data(sd_token, token, 'LIDAR_TOP', f'{sweep_dir}/{Path(sweep["lidar_points"]["lidar_path"]).name}',
                     round(sweep['timestamp'] * 1e6), sweep['lidar_points']['lidar2ego'], sweep['ego2global'],
                     key=False, prev=sweep_prev)
            sweep_prev = sd_token
        add_data(f'lidar-{token}', token, 'LIDAR_TOP', f'samples/LIDAR_TOP/{info["lidar_points"]["lidar_path"]}',
                 stamp, lidar2ego, ego2global, prev=sweep_prev)
        for cam, img in info['images'].items():
            cam2ego = np.asarray(img['cam2ego'])
            cam_ego2global = ego2global @ lidar2ego @ np.linalg.inv(np.asarray(img['lidar2cam'])) @ np.linalg.inv(
                cam2ego)
            cs = add_data(img['sample_data_token'], token, cam, f'samples/{cam}/{img["img_path"]}',
                          round(img['timestamp'] * 1e6), cam2ego, cam_ego2global)
            cs['camera_intrinsic'] = img['cam2img']
        lidar2global = ego2global @ lidar2ego
        attributes = attributes_by_centre(info)
        for i, inst in enumerate(info['instances']):
            x, y, z, l, w, h, yaw = inst['bbox_3d']
            centre = lidar2global[:3, :3] @ [x, y, z] + lidar2global[:3, 3]
            rotation = global_yaw_quaternion(yaw, lidar2global)
            v_lidar = np.asarray(inst['velocity'], dtype=np.float64)
            # The global (vx, vy) whose LiDAR-frame (x, y) is the stored velocity (the z the rotation adds is dropped).
            v_global = np.linalg.solve(lidar2global[:3, :3].T[:2, :2], v_lidar)
            name = NUSCENES_CLASSES[inst['bbox_label']] if inst['bbox_label'] >= 0 else None
            ann, before = f'ann-{k}-{i}', f'ann-{k}-{i}-before'
            attr = attributes.get(i)
            common = dict(instance_token=f'inst-{k}-{i}', visibility_token='4', size=[w, l, h], rotation=rotation,
                          attribute_tokens=[f'attr-{attr}'] if attr else [])
            t['sample_annotation'] += [
                dict(common, token=ann, sample_token=token, translation=list(centre),
                     num_lidar_pts=int(inst['num_lidar_pts']), num_radar_pts=int(inst['num_radar_pts']),
                     prev=before, next=''),
                dict(common, token=before, sample_token=prev_token,
                     translation=list(centre - 0.5 * np.array([*v_global, 0.0])), num_lidar_pts=1, num_radar_pts=0,
                     prev='', next=ann)]
            t['instance'].append(dict(token=f'inst-{k}-{i}', category_token=f'cat-{CATEGORY_OF[name]}',
                                      nbr_annotations=2, first_annotation_token=before, last_annotation_token=ann))
    (root / VERSION).mkdir()
    for name, rows in t.items():
        (root / VERSION / f'{name}.json').write_text(json.dumps(rows))
    (root / VERSION / 'splits.json').write_text(json.dumps({'rt_val': names}))
    return names


def global_yaw_quaternion(yaw: float, lidar2global: np.ndarray) -> list:
    """The yaw-only global rotation whose box, moved to the LiDAR frame, has devkit yaw ``yaw``."""
    to_lidar = Quaternion(matrix=np.linalg.svd(lidar2global[:3, :3])[0] @ np.linalg.svd(lidar2global[:3, :3])[2])
    angle = yaw + np.arctan2(lidar2global[1, 0], lidar2global[0, 0])
    for _ in range(5):
        got = (to_lidar.inverse * Quaternion(axis=[0, 0, 1], angle=angle)).yaw_pitch_roll[0]
        angle += np.arctan2(np.sin(yaw - got), np.cos(yaw - got))
    return list(Quaternion(axis=[0, 0, 1], angle=angle).elements)


def attributes_by_centre(info) -> dict:
    """Instance index -> attribute name, from the ``cam_instances`` whose camera-frame centre is the instance's."""
    out = {}
    centres = np.array([inst['bbox_3d'][:3] for inst in info['instances']]).reshape(-1, 3)
    for cam, instances in info.get('cam_instances', {}).items():
        cam2lidar = np.linalg.inv(np.asarray(info['images'][cam]['lidar2cam']))
        for inst in instances:
            centre = cam2lidar[:3, :3] @ inst['bbox_3d'][:3] + cam2lidar[:3, 3]
            i = int(np.argmin(np.linalg.norm(centres - centre, axis=1)))
            assert np.linalg.norm(centres[i] - centre) < 1e-2
            if NUSCENES_ATTRIBUTES[inst['attr_label']] != 'None':
                out[i] = NUSCENES_ATTRIBUTES[inst['attr_label']]
    return out


def assert_matrix(ours, expected, what, rot_atol=2e-6, trans_atol=5e-4):
    ours, expected = np.asarray(ours), np.asarray(expected)
    np.testing.assert_allclose(ours[:3, :3], expected[:3, :3], atol=rot_atol, err_msg=what)
    np.testing.assert_allclose(ours[:3, 3], expected[:3, 3], atol=trans_atol, err_msg=what)


def compare_infos(ours, expected, skip=()):
    """Every key of mmdet3d's sample info is in ours with the same value (matrices and boxes to float32 accuracy
    of mmdet3d's stored poses), but the keys of ``skip``."""
    for key, value in expected.items():
        assert value is None or key in ours, key
    assert ours['token'] == expected['token']
    assert ours['timestamp'] == pytest.approx(expected['timestamp'], abs=1e-6)
    assert_matrix(ours['ego2global'], expected['ego2global'], 'ego2global')
    assert ours['lidar_points']['lidar_path'] == expected['lidar_points']['lidar_path']
    if 'num_pts_feats' not in skip:
        assert ours['lidar_points']['num_pts_feats'] == expected['lidar_points']['num_pts_feats']
    assert_matrix(ours['lidar_points']['lidar2ego'], expected['lidar_points']['lidar2ego'], 'lidar2ego', 1e-6, 1e-6)
    assert list(ours['images']) == list(expected['images'])
    for cam, img in expected['images'].items():
        mine = ours['images'][cam]
        assert set(img) <= set(mine), cam
        assert mine['img_path'] == img['img_path'] and mine['sample_data_token'] == img['sample_data_token']
        assert mine['timestamp'] == pytest.approx(img['timestamp'], abs=1e-6)
        np.testing.assert_allclose(mine['cam2img'], img['cam2img'], atol=1e-9)
        assert_matrix(mine['cam2ego'], img['cam2ego'], f'{cam} cam2ego', 1e-6, 1e-6)
        assert_matrix(mine['lidar2cam'], img['lidar2cam'], f'{cam} lidar2cam')
    for j, sweep in enumerate(expected.get('lidar_sweeps', [])):
        mine = ours['lidar_sweeps'][j]
        assert mine['sample_data_token'] == sweep['sample_data_token']
        assert Path(mine['lidar_points']['lidar_path']).name == Path(sweep['lidar_points']['lidar_path']).name
        assert mine['timestamp'] == pytest.approx(sweep['timestamp'], abs=1e-6)
        assert_matrix(mine['ego2global'], sweep['ego2global'], 'sweep ego2global')
        lidar2sensor = sweep['lidar_points'].get('lidar2sensor', sweep['lidar_points'].get('lidar2cam'))
        assert_matrix(mine['lidar_points']['lidar2sensor'], lidar2sensor, 'sweep lidar2sensor')
    assert len(ours.get('lidar_sweeps', [])) == len(expected.get('lidar_sweeps', []))
    assert len(ours['instances']) == len(expected['instances'])
    for mine, inst in zip(ours['instances'], expected['instances']):
        assert set(inst) <= set(mine)
        np.testing.assert_allclose(mine['bbox_3d'][:3], inst['bbox_3d'][:3], atol=5e-4)
        np.testing.assert_allclose(mine['bbox_3d'][3:6], inst['bbox_3d'][3:6], atol=1e-9)
        assert np.cos(mine['bbox_3d'][6] - inst['bbox_3d'][6]) == pytest.approx(1.0, abs=1e-10)
        np.testing.assert_allclose(mine['velocity'], inst['velocity'], atol=1e-5)
        for key in {'bbox_label', 'bbox_label_3d', 'num_lidar_pts', 'num_radar_pts', 'bbox_3d_isvalid'} - set(skip):
            assert mine[key] == inst[key], key
    for cam, instances in expected.get('cam_instances', {}).items():
        mine = ours['cam_instances'][cam]
        assert len(mine) == len(instances), cam
        for m, inst in zip(mine, instances):
            assert set(inst) <= set(m)
            np.testing.assert_allclose(m['bbox'], inst['bbox'], atol=0.05)
            np.testing.assert_allclose(m['center_2d'], inst['center_2d'], atol=0.01)
            assert m['depth'] == pytest.approx(inst['depth'], abs=5e-4)
            np.testing.assert_allclose(m['bbox_3d'][:6], inst['bbox_3d'][:6], atol=5e-4)
            assert np.cos(m['bbox_3d'][6] - inst['bbox_3d'][6]) == pytest.approx(1.0, abs=1e-10)
            np.testing.assert_allclose(m['velocity'], inst['velocity'], atol=1e-5)
            for key in ('bbox_label', 'bbox_label_3d', 'attr_label', 'bbox_3d_isvalid'):
                assert m[key] == inst[key], key


def load(path):
    with open(path, 'rb') as f:
        return pickle.load(f)


def convert(infos, tmp_path, **kwargs):
    root = tmp_path / 'nus'
    tables_from_infos(infos, root, **kwargs)
    written = create_nuscenes_infos(str(root), VERSION, splits={'val': 'rt_val'})
    return load(written['val'])


def test_real_keyframe_equals_mmdet3d_infos(shared_dir, tmp_path):
    expected = load(shared_dir / 'data/mmdet3d_demo/nuscenes/n015-2018-07-24-11-22-45+0800.pkl')
    ours = convert(expected['data_list'], tmp_path)
    # mmdet3d's file lists the 10 classes only, though some of its instances have no label (-1).
    categories = dict(expected['metainfo']['categories'], **{'movable_object.debris': -1})
    assert ours['metainfo'] == dict(expected['metainfo'], version=VERSION, split='rt_val', categories=categories)
    (sample, ) = ours['data_list']
    compare_infos(sample, expected['data_list'][0])
    # What a temporal detector needs beyond mmdet3d's keys.
    assert sample['scene_name'] == 'scene-0' and sample['frame_idx'] == 0 and sample['prev'] == sample['next'] == ''
    for cam, img in sample['images'].items():
        assert (img['height'], img['width']) == (900, 1600)
        lidar2global = np.asarray(sample['ego2global']) @ np.asarray(sample['lidar_points']['lidar2ego'])
        cam2global = np.asarray(img['ego2global']) @ np.asarray(img['cam2ego'])
        assert_matrix(np.linalg.inv(cam2global) @ lidar2global, img['lidar2cam'], cam)


def test_mmdet3d_test_infos_with_sweeps(shared_dir, tmp_path):
    expected = load(shared_dir / 'data/mmdet3d_tests/nuscenes/nus_info.pkl')['data_list']
    # The fixture lists its one sweep twice (the same sample_data token and file).
    sweeps = expected[1]['lidar_sweeps']
    assert len(sweeps) == 2 and sweeps[0] == sweeps[1]
    expected[1]['lidar_sweeps'] = sweeps[:1]
    ours = convert(expected, tmp_path)['data_list']
    assert [s['sample_idx'] for s in ours] == [0, 1]
    for mine, info in zip(ours, expected):
        # This older test fixture stores 4 point features (the .pcd.bin files hold 5) and validity flags that are
        # not mmdet3d's rule (a car with 169 LiDAR points is invalid).
        assert mine['lidar_points']['num_pts_feats'] == 5
        compare_infos(mine, info, skip=('bbox_3d_isvalid', 'num_pts_feats'))
        assert [inst['bbox_3d_isvalid'] for inst in mine['instances']] == [
            inst['num_lidar_pts'] + inst['num_radar_pts'] > 0 for inst in info['instances']]
    assert ours[1]['lidar_sweeps'][0]['lidar_points']['lidar_path'].startswith('sweeps/LIDAR_TOP/')


@pytest.fixture()
def oracle_copy(shared_dir, tmp_path):
    """The oracle's database, with empty camera files (the oracle ships none)."""
    root = tmp_path / 'nus-synth-mini'
    shutil.copytree(shared_dir / 'oracles/nuscenes/nus-synth-mini', root)
    for row in json.loads((root / 'v1.0-synth-mini/sample_data.json').read_text()):
        if row['filename'].startswith('samples/CAM'):
            (root / row['filename']).parent.mkdir(parents=True, exist_ok=True)
            (root / row['filename']).touch()
    return root


@pytest.mark.slow
def test_custom_version_and_splits_on_the_oracle_database(oracle_copy, tmp_path):
    from nuscenes import NuScenes
    assert resolve_splits(str(oracle_copy), 'v1.0-synth-mini')['val'][0] == 'synth_val'
    written = create_nuscenes_infos(str(oracle_copy), 'v1.0-synth-mini', out_dir=str(tmp_path / 'infos'))
    assert set(written) == {'val'}
    infos = load(written['val'])
    assert infos['metainfo']['version'] == 'v1.0-synth-mini' and infos['metainfo']['split'] == 'synth_val'
    # Non-detection categories get -1, as in mmdet3d's files.
    assert infos['metainfo']['categories']['animal'] == -1
    data = infos['data_list']
    nusc = NuScenes('v1.0-synth-mini', str(oracle_copy), verbose=False)
    assert len(data) == 20 and sum(len(s['instances']) for s in data) == 782
    # Scene by scene in time order, linked like the devkit's samples.
    assert [s['scene_name'] for s in data] == ['scene-9001'] * 10 + ['scene-9002'] * 10
    assert [s['frame_idx'] for s in data[:10]] == list(range(10))
    for a, b in zip(data, data[1:]):
        if a['scene_token'] == b['scene_token']:
            assert a['next'] == b['token'] and b['prev'] == a['token'] and b['timestamp'] > a['timestamp']
    # Boxes and velocities, moved back to the global frame, are the devkit's.
    for sample in data[::7]:
        lidar2global = np.asarray(sample['ego2global'], np.float64) @ np.asarray(
            sample['lidar_points']['lidar2ego'], np.float64)
        for token, inst in zip(nusc.get('sample', sample['token'])['anns'], sample['instances']):
            ann = nusc.get('sample_annotation', token)
            centre = lidar2global[:3, :3] @ inst['bbox_3d'][:3] + lidar2global[:3, 3]
            np.testing.assert_allclose(centre, ann['translation'], atol=2e-4)
            np.testing.assert_allclose(inst['bbox_3d'][3:6], np.array(ann['size'])[[1, 0, 2]])
            velocity = nusc.box_velocity(token)
            if not np.isnan(velocity).any():
                np.testing.assert_allclose(lidar2global[:2, :3] @ [*inst['velocity'], 0.0], velocity[:2], atol=1e-3)
            else:
                assert np.isnan(inst['velocity']).all()
        # The camera centres are the LiDAR boxes' centres projected with lidar2cam and cam2img.
        for cam in CAMERAS:
            lidar2img = np.eye(4)
            lidar2img[:3, :3] = sample['images'][cam]['cam2img']
            lidar2img = lidar2img @ np.asarray(sample['images'][cam]['lidar2cam'])
            cam2lidar = np.linalg.inv(np.asarray(sample['images'][cam]['lidar2cam']))
            for inst in sample['cam_instances'][cam]:
                centre = cam2lidar[:3, :3] @ inst['bbox_3d'][:3] + cam2lidar[:3, 3]
                uvw = lidar2img[:3, :3] @ centre + lidar2img[:3, 3]
                np.testing.assert_allclose(uvw[:2] / uvw[2], inst['center_2d'], atol=1e-3)


@pytest.mark.slow
def test_missing_files_and_tables_are_named(shared_dir, oracle_copy, tmp_path):
    camera_file = next((oracle_copy / 'samples/CAM_BACK').iterdir())
    camera_file.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(camera_file.name) + ': missing file of sample '
                       r'[0-9a-f]{32} \(scene scene-900[12]\), CAM_BACK'):
        create_nuscenes_infos(str(oracle_copy), 'v1.0-synth-mini', out_dir=str(tmp_path / 'infos'))
    (oracle_copy / 'v1.0-synth-mini/visibility.json').unlink()
    with pytest.raises(FileNotFoundError, match="visibility.json: missing table 'visibility'"):
        create_nuscenes_infos(str(oracle_copy), 'v1.0-synth-mini')
    # The oracle as shipped has no camera files at all.
    with pytest.raises(FileNotFoundError, match='CAM_FRONT'):
        create_nuscenes_infos(str(shared_dir / 'oracles/nuscenes/nus-synth-mini'), 'v1.0-synth-mini',
                              out_dir=str(tmp_path / 'infos2'))


def test_split_errors_name_the_split_and_scene(oracle_copy, tmp_path):
    split_file = tmp_path / 'splits.json'
    split_file.write_text(json.dumps({'train': ['scene-9001'], 'val': ['scene-0042']}))
    with pytest.raises(KeyError, match=r"split 'val' lists scene\(s\) \['scene-0042'\]"):
        create_nuscenes_infos(str(oracle_copy), 'v1.0-synth-mini', split_file=str(split_file))
    with pytest.raises(ValueError, match=r"no split\(s\) \['nope'\]"):
        resolve_splits(str(oracle_copy), 'v1.0-synth-mini', splits={'val': 'nope'})
    with pytest.raises(FileNotFoundError, match='--split-file'):
        resolve_splits(str(oracle_copy), 'v1.0-other')


@pytest.mark.slow
def test_create_data_cli_on_the_synthetic_world(tmp_path):
    from perception.datasets.synthetic import generate_nuscenes
    root = tmp_path / 'synth'
    generate_nuscenes(root, num_scenes=3, num_val_scenes=1, samples_per_scene=2, seed=1, image_scale=0.1,
                      workers=1, progress=False)
    proc = subprocess.run([sys.executable, 'tools/create_data.py', 'nuscenes', '--root', str(root), '--version',
                           'v1.0-synth'], cwd=REPO_ROOT, capture_output=True, text=True,
                          env={**os.environ, 'PYTHONPATH': str(REPO_ROOT)})
    assert proc.returncode == 0, proc.stderr
    train, val = load(root / 'nuscenes_infos_train.pkl'), load(root / 'nuscenes_infos_val.pkl')
    assert train['metainfo']['split'] == 'synth_train' and val['metainfo']['split'] == 'synth_val'
    assert len(train['data_list']) == 4 and len(val['data_list']) == 2
    first, sample = val['data_list']
    assert sample['prev'] == first['token'] and 'lidar_sweeps' not in first
    # The world has keyframes only: the sweep before a sample is the previous sample's scan (as mmdet3d walks it).
    (sweep, ) = sample['lidar_sweeps']
    assert sweep['lidar_points']['lidar_path'] == f'samples/LIDAR_TOP/{first["lidar_points"]["lidar_path"]}'
    assert sample['images']['CAM_FRONT']['width'] == 160 and sample['instances']
    # Projected boxes are clipped to the 160x90 images, not to 1600x900.
    boxes = np.array([inst['bbox'] for cam in CAMERAS for inst in sample['cam_instances'][cam]])
    assert len(boxes) and boxes[:, [0, 2]].max() <= 160 and boxes[:, [1, 3]].max() <= 90


def test_official_versions_use_the_official_splits(tmp_path):
    mini = resolve_splits(str(tmp_path), 'v1.0-mini')
    assert {out: (split, len(scenes)) for out, (split, scenes) in mini.items()} == {
        'train': ('mini_train', 8), 'val': ('mini_val', 2)}
    trainval = resolve_splits(str(tmp_path), 'v1.0-trainval')
    assert len(trainval['train'][1]) == 700 and len(trainval['val'][1]) == 150
    assert list(resolve_splits(str(tmp_path), 'v1.0-test')) == ['test']
