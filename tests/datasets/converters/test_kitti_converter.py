"""The KITTI converter against mmdet3d's own info files, on the KITTI folder that
:func:`perception.testing.make_kitti_root` rebuilds from them."""
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from perception.datasets.converters.kitti_converter import (count_points_in_boxes, create_kitti_infos,
                                                            kitti_difficulty)
from perception.testing import make_kitti_root

REPO_ROOT = Path(__file__).resolve().parents[3]


def load(path):
    with open(path, 'rb') as f:
        return pickle.load(f)


@pytest.fixture(scope='module')
def converted(shared_dir, tmp_path_factory):
    root = make_kitti_root(shared_dir, tmp_path_factory.mktemp('kitti'))
    paths = create_kitti_infos(str(root), out_dir=str(root / 'infos'))
    return root, {split: load(path) for split, path in paths.items()}


def assert_same(actual, expected, where='info'):
    """Same keys, same types of containers, numbers equal (floats to 1e-6 relative: mmdet3d projected the
    centres in float32, this converter in float64)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), \
            f'{where}: keys {sorted(actual)} != {sorted(expected)}'
        for key in expected:
            assert_same(actual[key], expected[key], f'{where}.{key}')
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, list) and len(actual) == len(expected), f'{where}: {actual} != {expected}'
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f'{where}[{i}]')
    elif isinstance(expected, str):
        assert actual == expected, f'{where}: {actual!r} != {expected!r}'
    elif isinstance(expected, (int, np.integer)):
        assert isinstance(actual, (int, np.integer)) and actual == expected, f'{where}: {actual!r} != {expected!r}'
    else:
        assert math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-6), f'{where}: {actual!r} != {expected!r}'


def test_train_info_equals_mmdet3d(converted, shared_dir):
    _, infos = converted
    expected = load(shared_dir / 'data/mmdet3d_tests/kitti/kitti_infos_train.pkl')
    assert_same(infos['train']['data_list'], expected['data_list'], 'train')
    categories = dict(expected['metainfo']['categories'])
    del categories['DontCare']  # mmdet3d lists DontCare only in files that hold one; frame 0 has none
    assert infos['train']['metainfo'] == dict(expected['metainfo'], categories=categories)


def test_val_info_with_dontcare_equals_mmdet3d_demo(converted, shared_dir):
    _, infos = converted
    expected = load(shared_dir / 'data/mmdet3d_demo/kitti/000008.pkl')['data_list'][0]
    expected['sample_idx'] = expected.pop('sample_id')  # the demo file predates the key's rename
    assert_same(infos['val']['data_list'][0], expected, 'val')
    reference = load(shared_dir / 'data/mmdet3d_tests/kitti/kitti_infos_train.pkl')['metainfo']
    assert infos['val']['metainfo'] == reference
    assert [inst['num_lidar_pts'] for inst in infos['val']['data_list'][0]['instances']][:6] == \
        [1325, 1900, 881, 659, 55, 162]


def test_trainval_and_test(converted):
    _, infos = converted
    assert infos['trainval']['data_list'] == infos['train']['data_list'] + infos['val']['data_list']
    test = infos['test']['data_list'][0]
    assert test['instances'] == [] and 'DontCare' not in infos['test']['metainfo']['categories']
    assert test['images'] == infos['val']['data_list'][0]['images']


def test_difficulty_of_mono3d_fixture(shared_dir):
    annos = load(shared_dir / 'data/mmdet3d_tests/kitti/kitti_infos_mono3d.pkl')[0]['annos']
    np.testing.assert_array_equal(kitti_difficulty(annos['bbox'], annos['occluded'], annos['truncated']),
                                  annos['difficulty'])
    # the thresholds are strict on height, inclusive on occlusion and truncation
    bbox = np.array([[0., 0., 10., 40.], [0., 0., 10., 40.01], [0., 0., 10., 25.01]])
    np.testing.assert_array_equal(kitti_difficulty(bbox, np.array([0, 0, 2]), np.array([0.15, 0.15, 0.5])),
                                  [1, 0, 2])


def test_points_outside_the_image_are_not_counted():
    lidar2cam = np.array([[0., -1., 0., 0.], [0., 0., -1., 0.], [1., 0., 0., 0.], [0., 0., 0., 1.]])
    cam2img = np.array([[100., 0., 49.5], [0., 100., 49.5], [0., 0., 1.]])
    box = np.array([[0., 1., 10., 20., 2., 2., 0.]])  # 20 m long along camera x, mostly outside a 100 px image
    points = np.array([[10., 0., 0.], [10., -4., 0.], [10., -9., 0.], [10., 9., 0.], [10., 0., 3.]])
    assert count_points_in_boxes(points, lidar2cam, cam2img, (100, 100), box).tolist() == [2]


@pytest.mark.slow
def test_cli_writes_the_four_files(converted, tmp_path):
    root, _ = converted
    subprocess.run([sys.executable, str(REPO_ROOT / 'tools/create_data.py'), 'kitti', '--root', str(root),
                    '--out-dir', str(tmp_path), '--no-lidar'], check=True, cwd=REPO_ROOT,
                   env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), capture_output=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f'kitti_infos_{s}.pkl' for s in
                                                          ('test', 'train', 'trainval', 'val')]
    info = load(tmp_path / 'kitti_infos_val.pkl')['data_list'][0]
    assert 'lidar_path' not in info['lidar_points']
    assert {inst['num_lidar_pts'] for inst in info['instances']} == {-1}


def test_ground_planes(converted, tmp_path):
    root, _ = converted
    planes = root / 'training/planes'
    planes.mkdir()
    for idx, plane in ((0, '-7.051e-03 -9.997e-01 -2.200e-02 1.652e+00'), (8, '0 -1 0 1.65')):
        (planes / f'{idx:06d}.txt').write_text(f'# Plane\nWidth 4\nHeight 1\n{plane}\n')
    paths = create_kitti_infos(str(root), out_dir=str(tmp_path), with_plane=True)
    np.testing.assert_array_equal(load(paths['train'])['data_list'][0]['plane'],
                                  [-7.051e-03, -9.997e-01, -2.2e-02, 1.652])
    assert 'plane' not in load(paths['test'])['data_list'][0]
    (planes / '000008.txt').write_text('# Plane\nWidth 4\nHeight 1\n0 -1 0\n')
    with pytest.raises(ValueError, match=r'planes/000008\.txt:4: expected the plane as 4 numbers'):
        create_kitti_infos(str(root), out_dir=str(tmp_path), with_plane=True)
    for path in planes.iterdir():
        path.unlink()
    planes.rmdir()


def test_bad_input_names_file_and_line(shared_dir, tmp_path):
    bad = make_kitti_root(shared_dir, tmp_path / 'kitti')
    label = bad / 'training/label_2/000008.txt'
    rows = label.read_text().splitlines()
    label.write_text('\n'.join(rows[:2] + [' '.join(rows[2].split()[:10])] + rows[3:]) + '\n')
    with pytest.raises(ValueError, match=r'000008\.txt:3: expected 15 or 16 columns'):
        create_kitti_infos(str(bad), out_dir=str(tmp_path))
    label.write_text('\n'.join(rows) + '\n')

    calib = bad / 'training/calib/000000.txt'
    good = calib.read_text()
    lines = good.splitlines()
    lines[4] = ' '.join(['R0_rect:', 'nan'] + lines[4].split()[2:])
    calib.write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError, match=r'000000\.txt:5: field "R0_rect" must be finite'):
        create_kitti_infos(str(bad), out_dir=str(tmp_path))
    calib.write_text(good)

    (bad / 'training/label_2/000000.txt').unlink()
    with pytest.raises(FileNotFoundError, match=r'label_2/000000\.txt: missing'):
        create_kitti_infos(str(bad), out_dir=str(tmp_path))
