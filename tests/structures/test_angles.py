"""perception.structures.angles: the one wrap, alpha <-> yaw, for floats, numpy and torch alike."""
import math

import numpy as np
import pytest
import torch

from perception.structures import alpha_to_yaw, wrap_angle, yaw_to_alpha

ANGLES = [0., 1., math.pi - 1e-3, math.pi, -math.pi, 3 * math.pi / 2, -7.]
WRAPPED = [0., 1., math.pi - 1e-3, -math.pi, -math.pi, -math.pi / 2, -7. + 2 * math.pi]


@pytest.mark.parametrize('kind', [float, np.array, torch.tensor])
def test_wrap_into_minus_pi_pi(kind):
    if kind is float:
        out = [wrap_angle(a) for a in ANGLES]
    else:
        out = wrap_angle(kind(ANGLES, dtype=torch.float64) if kind is torch.tensor else kind(ANGLES))
        assert isinstance(out, (np.ndarray, torch.Tensor)) and type(out) is type(kind([0.]))
        out = out.tolist()
    np.testing.assert_allclose(out, WRAPPED, rtol=0, atol=1e-12)
    assert all(-math.pi <= a < math.pi for a in out)


def test_alpha_and_yaw_by_hand_and_round_trip():
    # a box straight ahead: alpha = yaw; 10 m left of the axis at 10 m: the ray turns by -45 degrees
    assert yaw_to_alpha(0.3, 0., 20.) == pytest.approx(0.3)
    assert yaw_to_alpha(0.3, -10., 10.) == pytest.approx(0.3 + math.pi / 4)
    # past pi: wrapped back
    assert yaw_to_alpha(3.1, -5., 10.) == pytest.approx(3.1 + math.atan2(5, 10) - 2 * math.pi)
    yaw = torch.tensor([-3.1, -1., 0., 2., 3.1], dtype=torch.float64)
    x = torch.tensor([-20., -3., 0., 4., 30.], dtype=torch.float64)
    z = torch.tensor([5., 10., 1., 40., 2.], dtype=torch.float64)
    alpha = yaw_to_alpha(yaw, x, z)
    assert isinstance(alpha, torch.Tensor) and bool(((alpha >= -math.pi) & (alpha < math.pi)).all())
    torch.testing.assert_close(alpha_to_yaw(alpha, x, z), yaw)
    np.testing.assert_allclose(yaw_to_alpha(yaw.numpy(), x.numpy(), z.numpy()), alpha.numpy(), rtol=0, atol=1e-12)
