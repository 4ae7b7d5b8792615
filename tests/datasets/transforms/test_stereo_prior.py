"""StereoPseudoDisparity, the stereo-matching teacher of the depth-ranking loss, on a real KITTI raw pair:
its disparities, turned into depth with the calibration, agree with the official depth ground truth."""
import cv2
import numpy as np
import pytest

from perception.datasets.kitti_raw import load_kitti_raw_calib
from perception.datasets.transforms import StereoPseudoDisparity
from perception.fileio.depth import read_depth_png

DRIVE = '2011_09_26_drive_0001_sync'
FRAME = '0000000005.png'


@pytest.fixture(scope='module')
def pair(shared_dir):
    root = shared_dir / 'data' / 'kitti_raw_mini'
    left, right = (cv2.imread(str(root / '2011_09_26' / DRIVE / cam / 'data' / FRAME))
                   for cam in ('image_02', 'image_03'))
    gt = {cam: read_depth_png(str(root / 'depth_completion' / 'train' / DRIVE / 'proj_depth' / 'groundtruth' /
                                  cam / FRAME)) for cam in ('image_02', 'image_03')}
    calib = load_kitti_raw_calib(str(root / '2011_09_26'))
    return left, right, gt, calib.intrinsics(2)[0, 0] * calib.baseline


def _relative_errors(disp, gt, focal_baseline):
    both = (disp > 0) & (gt > 0)
    assert both.sum() > 5000
    return np.abs(focal_baseline / disp[both] - gt[both]) / gt[both]


@pytest.mark.parametrize('side', ['l', 'r'])
def test_sgbm_depth_agrees_with_the_official_ground_truth(pair, side):
    left, right, gt, focal_baseline = pair
    target, partner, cam = (left, right, 'image_02') if side == 'l' else (right, left, 'image_03')
    prior = StereoPseudoDisparity(num_disparities=128)(dict(img=target, stereo_img=partner, side=side))
    disp = prior['depth_prior']
    assert disp.shape == target.shape[:2] and disp.dtype == np.float32
    assert (disp > 0).mean() > 0.7
    rel = _relative_errors(disp, gt[cam], focal_baseline)
    assert np.median(rel) < 0.05 and (rel < 0.1).mean() > 0.9


def test_a_flipped_pair_is_matched_as_its_mirror(pair):
    left, right, gt, focal_baseline = pair
    transform = StereoPseudoDisparity(num_disparities=128)
    plain = transform(dict(img=left, stereo_img=right, side='l'))['depth_prior']
    flipped = transform(dict(img=left[:, ::-1].copy(), stereo_img=right[:, ::-1].copy(), side='l', flip=True,
                             flip_direction='horizontal'))['depth_prior']
    rel = _relative_errors(flipped[:, ::-1], gt['image_02'], focal_baseline)
    assert np.median(rel) < 0.05
    both = (plain > 0) & (flipped[:, ::-1] > 0)
    assert np.median(np.abs(plain[both] - flipped[:, ::-1][both])) < 0.5
    # Matching the wrong way round finds no consistent depth.
    wrong = transform(dict(img=left, stereo_img=right, side='r'))['depth_prior']
    assert (wrong > 0).mean() < 0.5 * (plain > 0).mean() or \
        np.median(_relative_errors(wrong, gt['image_02'], focal_baseline)) > 0.3


def test_bad_arguments():
    with pytest.raises(ValueError, match='odd'):
        StereoPseudoDisparity(block_size=4)
    assert StereoPseudoDisparity(num_disparities=70).num_disparities == 80
    with pytest.raises(ValueError, match='differs in shape'):
        StereoPseudoDisparity()(dict(img=np.zeros((8, 32, 3), np.uint8), stereo_img=np.zeros((8, 16, 3), np.uint8)))
