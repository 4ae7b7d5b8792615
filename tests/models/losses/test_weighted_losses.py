"""The element-wise losses wrapped by mmdet's ``@weighted_loss``: weights, avg_factor and empty inputs."""
import math

import pytest
import torch

from perception.models.losses import (DimAwareL1Loss, MultiBinLoss, dim_aware_l1_loss, gradient_difference_loss,
                                      multibin_loss, softmax_focal_loss)


def test_gradient_difference_by_hand():
    pred = torch.tensor([[[[0., 2., 2.], [0., 0., 1.]]]], requires_grad=True)
    target = torch.tensor([[[[0., 1., 1.], [3., 3., 3.]]]], requires_grad=True)
    # |d_x|: pred [[0, 2, 0], [0, 0, 1]], target [[0, 1, 0], [0, 0, 0]]
    # |d_y|: pred [[0, 0, 0], [0, 2, 1]], target [[0, 0, 0], [3, 2, 2]]
    expected = torch.tensor([[[[0., 1., 0.], [3., 0., 2.]]]])
    torch.testing.assert_close(gradient_difference_loss(pred, target, reduction='none'), expected)
    loss = gradient_difference_loss(pred, target)
    assert loss.item() == pytest.approx(6 / 6)
    loss.backward()
    assert target.grad is None and pred.grad.abs().sum() > 0  # the guide gets no gradient


def test_weights_and_avg_factor_follow_mmdet():
    pred, target = torch.tensor([[4., 1.5, 1.6], [1., 1., 1.]]), torch.tensor([[5., 1., 2.], [2., 2., 2.]])
    elementwise = dim_aware_l1_loss(pred, target, reduction='none')
    weight = torch.tensor([[1., 1., 1.], [0., 0., 0.]])
    loss = DimAwareL1Loss(loss_weight=2.)
    torch.testing.assert_close(loss(pred, target, weight, reduction_override='sum'), 2 * elementwise[0].sum())
    torch.testing.assert_close(loss(pred, target, weight, avg_factor=3.), 2 * elementwise[0].sum() / 3, rtol=1e-6,
                               atol=0)
    angles, logits = torch.tensor([0.2, -1.0]), torch.randn(2, 24, generator=torch.Generator().manual_seed(0))
    per_object = multibin_loss(logits, angles, reduction='none', num_bins=12)
    torch.testing.assert_close(MultiBinLoss()(logits, angles, torch.tensor([0., 1.])), per_object[1] / 2)
    focal = softmax_focal_loss(torch.zeros(1, 3, 2), torch.tensor([[0, 2]]), torch.tensor([[1., 3.]]))
    assert focal.item() == pytest.approx(-0.25 * (2 / 3) ** 2 * math.log(1 / 3) * (1 + 3) / 2)


@pytest.mark.parametrize('loss, pred, target', [
    (DimAwareL1Loss(), torch.zeros(0, 3), torch.zeros(0, 3)),
    (MultiBinLoss(), torch.zeros(0, 24), torch.zeros(0)),
])
def test_no_objects_give_a_zero_with_gradient(loss, pred, target):
    pred.requires_grad_(True)
    for kwargs in (dict(), dict(avg_factor=1.), dict(reduction_override='sum')):
        value = loss(pred, target, **kwargs)
        assert value.shape == () and value.item() == 0
        value.backward()
