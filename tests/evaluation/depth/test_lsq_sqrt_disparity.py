"""The 'lsq-sqrt-disparity' protocol (DepthMaster's least_square_sqrt_disp, issue 19) against a hand-computed case."""
import numpy as np
import pytest

from perception.evaluation.depth import DepthMetric, align_depth, evaluate_depth


def test_exact_affine_sqrt_disparity_is_recovered():
    gt = np.array([[1., 4.], [16., 64.]])  # sqrt(1 / gt) = 1, 1/2, 1/4, 1/8
    valid = np.ones_like(gt, dtype=bool)
    # a raw prediction 0.5 * sqrt(1 / gt) + 0.25 (DepthMaster's relative output) is fitted directly
    raw = 0.5 * np.sqrt(1 / gt) + 0.25
    np.testing.assert_allclose(align_depth(raw, gt, valid, 'lsq-sqrt-disparity', pred_is_disparity=True), gt)
    # a depth prediction is turned into a square-root disparity first: depth x 4 is sqrt-disparity / 2
    np.testing.assert_allclose(align_depth(gt * 4, gt, valid, 'lsq-sqrt-disparity'), gt)


def test_hand_computed_fit_and_clip():
    # Two pixels fit a line exactly: s = 0 -> sqrt(1 / 4) = 0.5, s = 1 -> sqrt(1 / 1) = 1, so the aligned value is
    # 0.5 + 0.5 s; a third, unfitted pixel at s = -2 aligns to -0.5 and is clipped at sqrt(1 / max_depth) = 0.2.
    gt = np.array([[4., 1., 0.]])
    valid = gt > 0
    pred = np.array([[0., 1., -2.]])
    out = align_depth(pred, gt, valid, 'lsq-sqrt-disparity', max_depth=25., pred_is_disparity=True)
    np.testing.assert_allclose(out, [[4., 1., 25.]])
    # three pixels, least squares by hand: sqrt-disparities 1, 1/2, 1/3 against s = 2, 1, 0
    gt = np.array([[1., 4., 9.]])
    s = np.array([[2., 1., 0.]])
    y = np.array([1, 1 / 2, 1 / 3])
    scale = ((s[0] - 1) * (y - y.mean())).sum() / 2  # mean s = 1, sum((s - mean s)^2) = 2: scale 1/3
    shift = y.mean() - scale * 1
    assert scale == pytest.approx(1 / 3) and shift == pytest.approx(11 / 18 - 1 / 3)
    out = align_depth(s, gt, np.ones_like(gt, dtype=bool), 'lsq-sqrt-disparity', pred_is_disparity=True)
    np.testing.assert_allclose(out, 1 / (scale * s + shift)**2)
    assert not np.allclose(out, gt)  # not an exact fit: the least squares are what is tested


def test_a_reversed_prediction_is_the_constant_fit_and_the_metric_runs():
    gt = np.array([[1., 4., 9.]])
    with pytest.warns(UserWarning, match='square-root disparity is -'):
        aligned = align_depth(np.array([[0., 1., 2.]]), gt, gt > 0, 'lsq-sqrt-disparity', pred_is_disparity=True)
    # sqrt(1 / gt) = 1, 1/2, 1/3: scale 0 and shift 11/18 everywhere, depth (18/11)^2
    np.testing.assert_allclose(aligned, np.full((1, 3), (18 / 11)**2))
    gt = np.linspace(2, 40, 64).reshape(8, 8)
    raw = 0.3 * np.sqrt(1 / gt) - 0.05
    metrics = evaluate_depth(raw, gt, crop='none', scaling='lsq-sqrt-disparity', pred_is_disparity=True)
    assert metrics['abs_rel'] == pytest.approx(0, abs=1e-9) and metrics['a1'] == 1
    metric = DepthMetric(crop='none', scaling='lsq-sqrt-disparity', pred_is_disparity=True,
                         pred_key='pred_sqrt_disparity')
    # the ground truth scaled by 1.1 is still an affine map of the raw prediction away: aligned exactly
    metric.process({}, [dict(pred_sqrt_disparity=raw, gt_depth=gt * 1.1)])
    assert metric.results[0]['abs_rel'] == pytest.approx(0, abs=1e-9)
