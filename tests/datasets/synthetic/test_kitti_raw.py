import numpy as np
import pytest

from perception.datasets.synthetic import generate_kitti_raw
from perception.datasets.synthetic.geometry import KittiRig
from perception.fileio import read_raw_calib_file
from perception.fileio.depth import read_depth_png

DATE = '2011_09_26'
FRAMES = 3


@pytest.fixture(scope='module')
def raw_root(tmp_path_factory):
    out = tmp_path_factory.mktemp('synthraw')
    generate_kitti_raw(out, num_drives=2, frames_per_drive=FRAMES, num_test_drives=1, seed=1, date=DATE,
                       workers=1, progress=False)
    return out


def _drive(root, n):
    return root / 'raw' / DATE / f'{DATE}_drive_{n:04d}_sync'


def _poses(drive):
    rows = np.loadtxt(drive / 'poses.txt').reshape(-1, 3, 4)
    return np.concatenate([rows, np.tile([[[0, 0, 0, 1.]]], (len(rows), 1, 1))], axis=1)


def test_layout_calibration_and_split_lists(raw_root):
    drive = _drive(raw_root, 1)
    for sub in ('image_02/data', 'image_03/data'):
        assert sorted(p.name for p in (drive / sub).glob('*.png')) == [f'{i:010d}.png' for i in range(FRAMES)]
    assert len((drive / 'image_02' / 'timestamps.txt').read_text().splitlines()) == FRAMES
    oxts = np.loadtxt(drive / 'oxts' / 'data' / '0000000000.txt')
    assert oxts.shape == (30, )
    cam = read_raw_calib_file(raw_root / 'raw' / DATE / 'calib_cam_to_cam.txt')
    P2, P3 = cam['P_rect_02'].reshape(3, 4), cam['P_rect_03'].reshape(3, 4)
    assert abs((P2[0, 3] - P3[0, 3]) / P2[0, 0] - 0.54) < 1e-6
    zhou = (raw_root / 'splits' / 'eigen_zhou' / 'train_files.txt').read_text().splitlines()
    test = (raw_root / 'splits' / 'eigen' / 'test_files.txt').read_text().splitlines()
    # Zhou lists need both temporal neighbours, so only the middle frame of drive 1 qualifies.
    assert zhou == [f'{DATE}/{DATE}_drive_0001_sync 1 l', f'{DATE}/{DATE}_drive_0001_sync 1 r']
    assert test == [f'{DATE}/{DATE}_drive_0002_sync {i} l' for i in range(FRAMES)]
    assert (raw_root / 'depth' / 'val' / f'{DATE}_drive_0002_sync').is_dir()


def test_sparse_lidar_depth_agrees_with_dense_depth(raw_root):
    proj = raw_root / 'depth' / 'train' / f'{DATE}_drive_0001_sync' / 'proj_depth'
    for cam in ('image_02', 'image_03'):
        dense = read_depth_png(proj / 'groundtruth' / cam / '0000000001.png')
        sparse = read_depth_png(proj / 'velodyne_raw' / cam / '0000000001.png')
        assert dense.shape == (375, 1242) and (dense > 0).mean() > 0.5
        both = (sparse > 0) & (dense > 0)
        assert both.sum() > 5000 and (sparse > 0).mean() < 0.2
        rel = np.abs(sparse[both] - dense[both]) / dense[both]
        assert np.median(rel) < 0.01 and (rel < 0.05).mean() > 0.9


def test_poses_compose_with_the_ego_motion_and_the_depth_maps(raw_root):
    drive = _drive(raw_root, 1)
    poses = _poses(drive)
    assert np.allclose(poses[0], np.eye(4))
    oxts = np.stack([np.loadtxt(drive / 'oxts' / 'data' / f'{i:010d}.txt') for i in range(FRAMES)])
    # Frame k -> k + 1: forward (camera z) by about speed * 0.1 s, with the OXTS yaw change.
    for k in range(FRAMES - 1):
        rel = np.linalg.inv(poses[k]) @ poses[k + 1]
        assert abs(rel[2, 3] - oxts[k, 8] * 0.1) < 0.02 * oxts[k, 8] * 0.1 + 1e-3
        assert abs(rel[0, 3]) < 0.05 and abs(rel[1, 3]) < 1e-6
        yaw = np.arctan2(rel[0, 2], rel[0, 0])
        assert abs(-yaw - (oxts[k + 1, 5] - oxts[k, 5])) < 1e-4
        assert np.allclose(poses[k + 1], poses[k] @ rel)
    # The static world seen in frame 0, moved by the relative pose, lands where frame 1 sees it.
    rig = KittiRig()
    proj = raw_root / 'depth' / 'train' / f'{DATE}_drive_0001_sync' / 'proj_depth' / 'groundtruth' / 'image_02'
    d0, d1 = read_depth_png(proj / '0000000000.png'), read_depth_png(proj / '0000000001.png')
    v, u = np.nonzero((d0 > 3) & (d0 < 40))
    P = rig.P(2)
    pts = np.stack([(u - P[0, 2]) * d0[v, u] / P[0, 0] - P[0, 3] / P[0, 0], (v - P[1, 2]) * d0[v, u] / P[1, 1],
                    d0[v, u]], 1)
    rel = np.linalg.inv(poses[1]) @ poses[0]
    moved = pts @ rel[:3, :3].T + rel[:3, 3]
    uvw = moved @ P[:, :3].T + P[:, 3]
    uv = np.round(uvw[:, :2] / uvw[:, 2:]).astype(int)
    ok = (uv[:, 0] >= 0) & (uv[:, 0] < 1242) & (uv[:, 1] >= 0) & (uv[:, 1] < 375)
    err = np.abs(d1[uv[ok, 1], uv[ok, 0]] - moved[ok, 2]) / moved[ok, 2]
    assert (err < 0.02).mean() > 0.85
