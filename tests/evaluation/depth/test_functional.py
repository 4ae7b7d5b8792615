import math

import numpy as np
import pytest
import torch

from perception.evaluation.depth.functional import (align_depth, average_metrics, compute_depth_metrics,
                                                    crop_mask, evaluate_depth, fit_scale_shift,
                                                    median_scale, resize_depth)
from perception.fileio import InvalidInputError


def test_metrics_on_hand_values():
    gt = np.array([1., 2., 4., 1.])
    pred = np.array([1.1, 2., 2.5, 1.4])  # ratios 1.1, 1.0, 1.6, 1.4
    m = compute_depth_metrics(gt, pred)
    assert m['abs_rel'] == pytest.approx((0.1 + 0 + 1.5 / 4 + 0.4) / 4)
    assert m['sq_rel'] == pytest.approx((0.01 + 0 + 2.25 / 4 + 0.16) / 4)
    assert m['rmse'] == pytest.approx(math.sqrt((0.01 + 0 + 2.25 + 0.16) / 4))
    logs = [math.log(1.1), 0, math.log(4 / 2.5), math.log(1.4)]
    assert m['rmse_log'] == pytest.approx(math.sqrt(sum(x * x for x in logs) / 4))
    assert (m['a1'], m['a2'], m['a3']) == (0.5, 0.75, 1.0)


def test_metrics_accept_tensors_and_reject_non_positive():
    m = compute_depth_metrics(torch.tensor([2., 4.]), torch.tensor([2., 4.]))
    assert m['abs_rel'] == 0 and m['a1'] == 1
    with pytest.raises(ValueError, match='positive'):
        compute_depth_metrics(np.array([1., 2.]), np.array([0., 2.]))


@pytest.mark.parametrize('crop,rows,cols', [('garg', (153, 371), (44, 1197)),
                                            ('eigen', (124, 342), (44, 1197))])
def test_crops_on_kitti_size(crop, rows, cols):
    mask = crop_mask(375, 1242, crop)
    assert mask.sum() == (rows[1] - rows[0]) * (cols[1] - cols[0])
    assert mask[rows[0], cols[0]] and mask[rows[1] - 1, cols[1] - 1]
    assert not mask[rows[0] - 1, cols[0]] and not mask[rows[0], cols[0] - 1]
    assert not mask[rows[1], cols[1] - 1] and not mask[rows[1] - 1, cols[1]]
    assert crop_mask(375, 1242, 'none').all()


def test_median_scaling_on_hand_values():
    gt = np.array([[2., 4., 6.]])
    pred = np.array([[1., 1., 4.]])  # median ratio 4 / 1
    assert median_scale(gt.ravel(), pred.ravel()) == 4
    m = evaluate_depth(pred, gt, crop='none', scaling='median')
    assert m['abs_rel'] == pytest.approx((2 / 2 + 0 + 10 / 6) / 3)
    exact = evaluate_depth(gt * 0.3, gt, crop='none', scaling='median')
    assert exact['abs_rel'] == pytest.approx(0) and exact['a1'] == 1


def test_depth_range_and_clipping():
    gt = np.array([[0., 50., 100., 1e-3]])  # only 50 lies strictly inside (1e-3, 80)
    pred = np.array([[7., 200., 9., 9.]])  # clipped to 80
    m = evaluate_depth(pred, gt, crop='none', scaling='none')
    assert m['abs_rel'] == pytest.approx(30 / 50)
    assert m['rmse'] == pytest.approx(30)
    with pytest.raises(ValueError, match='no ground-truth pixel'):
        evaluate_depth(pred, np.zeros((1, 4)), crop='none', scaling='none')


def test_fixed_stereo_scale_factor():
    gt = np.array([[3., 9., 27.]])
    m = evaluate_depth(gt / 5.4, gt, crop='none', scaling='none', scale_factor=5.4)
    assert m['abs_rel'] == pytest.approx(0, abs=1e-12)
    unscaled = evaluate_depth(gt / 5.4, gt, crop='none', scaling='none')
    assert unscaled['abs_rel'] == pytest.approx(1 - 1 / 5.4)


def test_least_squares_scale_and_shift_on_hand_values():
    assert fit_scale_shift([1., 3., 5.], [0., 1., 2.]) == pytest.approx((2., 1.))
    # mean source 1, mean target 3, covariance 5, variance 2: scale 2.5, shift 3 - 2.5
    assert fit_scale_shift([1., 2., 6.], [0., 1., 2.]) == pytest.approx((2.5, 0.5))


def test_lsq_depth_recovers_an_affine_depth():
    gt = np.array([[2., 5., 10., 40.]])
    pred = (gt - 3.) / 2.  # affine-invariant, even negative
    m = evaluate_depth(pred, gt, crop='none', scaling='lsq-depth')
    assert m['abs_rel'] == pytest.approx(0, abs=1e-9)
    with pytest.raises(InvalidInputError, match='1 of 4 evaluated pixels'):  # as a depth it is impossible
        evaluate_depth(pred, gt, crop='none', scaling='median')


def test_lsq_disparity_recovers_an_affine_disparity():
    gt = np.array([[2., 5., 10., 40.]])
    disp = 3. / gt + 0.1
    as_depth = 1. / disp
    m = evaluate_depth(as_depth, gt, crop='none', scaling='lsq-disparity')
    assert m['abs_rel'] == pytest.approx(0, abs=1e-9)
    m = evaluate_depth(disp, gt, crop='none', scaling='lsq-disparity', pred_is_disparity=True)
    assert m['abs_rel'] == pytest.approx(0, abs=1e-9)
    # The same prediction is not affine in depth.
    assert evaluate_depth(as_depth, gt, crop='none', scaling='lsq-depth')['abs_rel'] > 0.01


def test_lsq_disparity_keeps_depth_finite():
    gt = np.array([[2., 5., 20., 0.]])
    pred = np.array([[1., 2., 4.,
                      1e9]])  # disparity fit: 0.6 * (1 / pred) - 0.1, exact on the valid pixels
    out = align_depth(pred, gt, gt > 0, 'lsq-disparity', max_depth=80.)
    np.testing.assert_allclose(out[0, :3], [2., 5., 20.])
    # The aligned disparity of the last pixel is negative: it becomes the farthest depth, not a negative.
    assert out[0, 3] == pytest.approx(80.)


def test_fit_uses_valid_pixels_only():
    gt = np.array([[2., 4., 0.]])
    pred = np.array([[1., 2., 1000.]])
    valid = gt > 0
    np.testing.assert_allclose(align_depth(pred, gt, valid, 'median')[valid], [2., 4.])
    np.testing.assert_allclose(align_depth(pred, gt, valid, 'lsq-depth')[valid], [2., 4.])


def test_resize_uses_half_pixel_centres():
    np.testing.assert_allclose(resize_depth(np.array([[0., 1.]]), (1, 4)), [[0., 0.25, 0.75, 1.]])
    m = evaluate_depth(np.full((2, 4), 10.), np.full((4, 8), 10.), crop='none', scaling='none')
    assert m['rmse'] == pytest.approx(0)


def test_bad_inputs_raise():
    gt = np.full((2, 2), 10.)
    with pytest.raises(ValueError, match='NaN'):
        evaluate_depth(np.array([[1., np.nan], [1., 1.]]), gt, crop='none', scaling='none')
    with pytest.raises(ValueError, match='unknown crop'):
        evaluate_depth(gt, gt, crop='kitti', scaling='none')
    with pytest.raises(ValueError, match='unknown scaling'):
        evaluate_depth(gt, gt, crop='none', scaling='mean')
    with pytest.raises(ValueError, match='no image'):
        average_metrics([])


def test_average_is_the_mean_of_per_image_metrics():
    a = dict(abs_rel=0.1, sq_rel=1., rmse=2., rmse_log=0.2, a1=0.5, a2=0.6, a3=0.7)
    b = dict(abs_rel=0.3, sq_rel=3., rmse=4., rmse_log=0.4, a1=0.7, a2=0.8, a3=0.9)
    m = average_metrics([a, b])
    assert m == pytest.approx(
        dict(abs_rel=0.2, sq_rel=2., rmse=3., rmse_log=0.3, a1=0.6, a2=0.7, a3=0.8))


def test_predictions_must_be_positive_where_evaluated():
    gt = np.full((4, 4), 10.)
    pred = np.full((4, 4), 5.)
    pred[0, :2] = 0.
    with pytest.raises(InvalidInputError, match='2 of 16 evaluated pixels of the prediction are <= 0'):
        evaluate_depth(pred, gt, crop='none', scaling='median')
    with pytest.raises(InvalidInputError, match='16 of 16'):
        evaluate_depth(-np.full((4, 4), 5.), gt, crop='none', scaling='none')
    # Outside the evaluated pixels a zero is no error.
    gt[0, :2] = 0.
    assert evaluate_depth(pred, gt, crop='none', scaling='median')['abs_rel'] == pytest.approx(0.)


def test_least_squares_with_a_negative_scale_scores_as_the_constant_fit():
    gt = np.linspace(2., 40., 24).reshape(4, 6)
    for scaling, target in (('lsq-depth', gt), ('lsq-disparity', 1. / gt), ('lsq-sqrt-disparity', np.sqrt(1. / gt))):
        with pytest.warns(UserWarning, match='least-squares scale .* is -'):
            flipped = evaluate_depth(100. - gt, gt, crop='none', scaling=scaling)
        # Scale 0, shift mean(target): every pixel gets the depth of the mean target value.
        depth = {'lsq-depth': target.mean(), 'lsq-disparity': 1. / target.mean(),
                 'lsq-sqrt-disparity': 1. / target.mean()**2}[scaling]
        constant = evaluate_depth(np.full_like(gt, depth), gt, crop='none', scaling='none')
        assert flipped == pytest.approx(constant)
        assert flipped['abs_rel'] > 0.3
    assert evaluate_depth(3. * gt + 1., gt, crop='none', scaling='lsq-depth')['abs_rel'] == pytest.approx(0., abs=1e-9)
