"""Video depth metrics: the temporal alignment error against hand-computed warps, the per-sequence alignment
against the per-image protocols, and both on real KITTI raw data (tests/data: drive 2011_09_26_0001, its OXTS
records of frames 0-4, LiDAR scans 1 and 4, depth ground truth of frames 5 and 25) and a synthetic drive."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from perception.datasets.kitti_raw import load_kitti_raw_calib, load_velodyne_points, project_points_to_depth
from perception.evaluation.depth.functional import SCALINGS, crop_mask, evaluate_depth
from perception.evaluation.depth.video_metrics import (evaluate_video_depth, kitti_raw_camera_poses, oxts_poses,
                                                       tae_pair, temporal_alignment_error, warp_depth)
from perception.fileio.depth import read_depth_png

REPO = Path(__file__).resolve().parents[3]
DRIVE = 'data/kitti_raw_mini/2011_09_26/2011_09_26_drive_0001_sync'
# A fronto-parallel plane 5 m ahead; the camera moves 1 m to the right between frames 0 and 1, so a point at
# 5 m moves fx / 5 = 2 pixels to the left and keeps its depth.
K = np.array([[10., 0., 3.5], [0., 10., 1.5], [0., 0., 1.]])


def _translation(x: float) -> np.ndarray:
    pose = np.eye(4)
    pose[0, 3] = x
    return pose


def test_warp_depth_keeps_a_map_under_the_identity_and_the_nearest_point_per_pixel():
    depth = np.random.default_rng(0).uniform(2, 20, (6, 9))
    assert np.allclose(warp_depth(depth, np.eye(4), K), depth)
    # Columns 2 (5 m) and 3 (10 m) both land on column 4 when the points move 1 m along x (fx 10: 2 px and
    # 1 px): the nearer one is kept.
    pair = np.zeros((1, 6))
    pair[0, 2], pair[0, 3] = 5., 10.
    warped = warp_depth(pair, _translation(1.), np.array([[10., 0., 1.], [0., 10., 0.], [0., 0., 1.]]))
    assert warped.tolist() == [[0., 0., 0., 0., 5., 0.]]


def test_tae_of_a_camera_translating_over_a_plane_by_hand():
    d0 = np.full((4, 8), 5.)
    d1 = np.full((4, 8), 5.)
    d1[:, 3:] = 6.
    pair = tae_pair(d0, d1, np.eye(4), _translation(1.), K)
    # Forward: frame 0 (5 m everywhere) lands on columns 0-5 of frame 1 at 5 m; against 5, 5, 5, 6, 6, 6 the
    # relative errors are 0, 0, 0, 1/6, 1/6, 1/6.
    assert pair['forward'] == pytest.approx(1 / 12) and pair['counts'][0] == 6 * 4
    # Backward: frame 1's columns 0-2 (5 m) move 2 px right, to 2-4; its columns 3-5 (6 m) move 10/6 px, to
    # 4.67, 5.67, 6.67, rounded 5, 6, 7; columns 6-7 leave the image. Against 5 m: 0, 0, 0, 0.2, 0.2, 0.2.
    assert pair['backward'] == pytest.approx(0.1) and pair['counts'][1] == 6 * 4
    result = temporal_alignment_error([d0, d1], [np.eye(4), _translation(1.)], K)
    assert result['tae'] == pytest.approx((1 / 12 + 0.1) / 2)
    # The same depths with the camera standing still: every pixel compares with itself.
    still = temporal_alignment_error([d0, d1], [np.eye(4), np.eye(4)], K)
    assert still['tae'] == pytest.approx((20 * (1 / 6) / 32 + 20 * 0.2 / 32) / 2)
    with pytest.raises(ValueError, match='share no pixel'):
        temporal_alignment_error([d0, d1], [np.eye(4), _translation(100.)], K)


@pytest.fixture(scope='module')
def oracle(shared_dir):
    folder = shared_dir / 'oracles' / 'depth'
    stems = ('0000000005', '0000000025')
    gts = [read_depth_png(folder / 'gt' / f'{s}.png') for s in stems]
    preds = [np.load(folder / 'pred_full' / f'{s}.npy') for s in stems]
    return preds, gts


@pytest.mark.parametrize('scaling', SCALINGS)
def test_one_frame_sequence_is_the_per_image_protocol(oracle, scaling):
    preds, gts = oracle
    video = evaluate_video_depth(preds[:1], gts[:1], scaling=scaling)
    image = evaluate_depth(preds[0], gts[0], scaling=scaling)
    for key, value in image.items():
        assert video[key] == pytest.approx(value, rel=1e-6)


def test_sequence_median_scale_is_one_ratio_for_all_frames(oracle):
    """Real KITTI ground truth of frames 5 and 25: one median ratio over both frames' valid pixels, by hand."""
    preds, gts = oracle
    result = evaluate_video_depth(preds, gts, crop='garg', scaling='median')
    valid = [(g > 1e-3) & (g < 80) & crop_mask(*g.shape, 'garg') for g in gts]
    scale = np.median(np.concatenate([g[v] for g, v in zip(gts, valid)])) / np.median(
        np.concatenate([p[v] for p, v in zip(preds, valid)]))
    assert result['scale'] == pytest.approx(scale, rel=1e-6)
    abs_rel = [np.mean(np.abs(g[v] - np.clip(p[v] * scale, 1e-3, 80)) / g[v]) for p, g, v in zip(preds, gts, valid)]
    assert [f['abs_rel'] for f in result['per_frame']] == pytest.approx(abs_rel, rel=1e-6)
    assert result['abs_rel'] == pytest.approx(np.mean(abs_rel), rel=1e-6)
    # A model whose scale doubles from one frame to the next: per image it is perfect, per sequence it is not.
    drifting = [gts[0] + (gts[0] == 0), 2 * (gts[1] + (gts[1] == 0))]
    assert evaluate_depth(drifting[1], gts[1])['abs_rel'] < 1e-6
    assert evaluate_video_depth(drifting, gts)['abs_rel'] > 0.2


@pytest.fixture(scope='module')
def real_drive(shared_dir):
    return shared_dir / DRIVE


def test_oxts_poses_follow_the_recorded_velocity(real_drive):
    records = np.stack([np.loadtxt(real_drive / 'oxts' / 'data' / f'{k:010d}.txt') for k in range(5)])
    poses = oxts_poses(records)
    stamps = (real_drive / 'oxts' / 'timestamps.txt').read_text().splitlines()[:5]
    seconds = np.array([float(s.split(':')[-1]) for s in stamps])
    speed = np.hypot(records[:, 6], records[:, 7])  # vn, ve
    for k in range(4):
        step = np.linalg.norm(poses[k + 1, :3, 3] - poses[k, :3, 3])
        assert step == pytest.approx(speed[k:k + 2].mean() * (seconds[k + 1] - seconds[k]), rel=0.05)
        assert step > 0.5  # the car moves, so the TAE below tests the poses


def test_tae_of_real_lidar_depth_with_the_oxts_poses(real_drive):
    """The LiDAR depth of frames 1 and 4 (0.3 s apart, the car 4 m further) as predictions: warped by the camera
    poses of the OXTS records, the scene agrees to 0.5 % (median) and 2-3 % (TAE, which counts the moving car
    ahead and the sweep's own motion); the same motion applied the wrong way round does not. (Leaving the camera
    still is no counter-check here: a LiDAR ring meets the ground at the same pixels in every frame.)"""
    calib = load_kitti_raw_calib(str(real_drive.parent))
    depths = [
        project_points_to_depth(load_velodyne_points(str(real_drive / 'velodyne_points' / 'data' / f'{k:010d}.bin')),
                                calib.velo_to_image(2), calib.image_size) for k in (1, 4)
    ]
    poses = kitti_raw_camera_poses(str(real_drive), [1, 4], cam=2)
    assert np.linalg.norm(poses[1, :3, 3] - poses[0, :3, 3]) == pytest.approx(4.03, abs=0.05)
    moved = tae_pair(depths[0], depths[1], poses[0], poses[1], calib.intrinsics(2))
    assert min(moved['counts']) > 500
    assert moved['forward'] < 0.03 and moved['backward'] < 0.03
    rel = np.linalg.inv(poses[1]) @ poses[0]
    warped = warp_depth(depths[0], rel, calib.intrinsics(2))
    both = (warped > 0) & (depths[1] > 0)
    assert np.median(np.abs(warped[both] - depths[1][both]) / depths[1][both]) < 0.01
    reversed_ = tae_pair(depths[0], depths[1], poses[1], poses[0], calib.intrinsics(2))
    assert reversed_['forward'] > 3 * moved['forward'] and reversed_['backward'] > 3 * moved['backward']


@pytest.mark.slow
def test_synthetic_drive_poses_and_the_eval_tool(tmp_path):
    """A rendered drive (exact depth and poses, tools/create_data.py synthetic-kitti-raw) through the eval tool:
    its own ground truth as the prediction has no per-frame error and a TAE of 0.012 (other cars move, the sky is
    filled at the depth range, warped points are rounded to pixels); a middle frame 10 % too deep gives 0.088.
    (Seed 3's drive 2 follows a car 3 m ahead at its own speed: a TAE of 0.13 for its ground truth.)"""
    from perception.datasets.synthetic import generate_kitti_raw
    generate_kitti_raw(tmp_path / 'raw_root', num_drives=1, frames_per_drive=3, num_test_drives=0, seed=3,
                       workers=1, progress=False)
    drive = tmp_path / 'raw_root' / 'raw' / '2011_09_26' / '2011_09_26_drive_0001_sync'
    gt_dir = tmp_path / 'raw_root' / 'depth' / 'train' / drive.name / 'proj_depth' / 'groundtruth' / 'image_02'
    gts = [read_depth_png(gt_dir / f'{k:010d}.png') for k in range(3)]
    spec = importlib.util.spec_from_file_location('video_depth_eval', REPO / 'tools/analysis/video_depth_eval.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for name, factors in (('exact', (1., 1., 1.)), ('flicker', (1., 1.1, 1.))):
        pred_dir = tmp_path / name
        pred_dir.mkdir()
        for k, gt in enumerate(gts):
            np.save(pred_dir / f'{k:010d}.npy', (np.where(gt > 0, gt, 100.) * factors[k]).astype(np.float32))
        result = tool.evaluate_drive(str(drive), str(pred_dir), 'median', crop='none')
        assert result['frames'] == [0, 1, 2]
        if name == 'exact':
            assert result['abs_rel'] < 1e-6 and result['tae'] < 0.02
        else:
            assert result['tae'] > 0.06
