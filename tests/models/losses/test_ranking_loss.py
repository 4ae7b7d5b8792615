import pytest
import torch

from perception.models.losses import DepthRankingLoss, depth_ranking_loss, sample_ranking_groups
from perception.registry import MODELS


def test_loss_is_zero_when_ordered_beyond_the_margin():
    groups = torch.tensor([[1., 2., 1., 2.], [3., 3. + 2e-4, 3., 3. + 2e-4], [5., 9., 5. + 5e-5, 9.]])
    assert torch.all(depth_ranking_loss(groups) == 0)


def test_loss_on_hand_values():
    groups = torch.tensor(
        [
            [2., 1., 2., 1.],  # wrong order: 2 - 1 + 1e-4
            [3., 3. + 5e-5, 3., 3. + 5e-5],  # ordered, but within the margin: 1e-4 - 5e-5
            [1., 2., 1.5, 2.],  # discontinuous near point: 0.01 * (0.5 - 1e-4)
        ],
        dtype=torch.float64)
    loss = depth_ranking_loss(groups)
    torch.testing.assert_close(loss, torch.tensor([1.0001, 5e-5, 0.01 * 0.4999], dtype=torch.float64))
    assert depth_ranking_loss(groups[2:], continuity_weight=1.)[0] == pytest.approx(0.4999)


def test_gradients_push_the_pair_apart():
    groups = torch.tensor([[2., 1., 2., 1.]], requires_grad=True)
    depth_ranking_loss(groups).sum().backward()
    torch.testing.assert_close(groups.grad, torch.tensor([[1., -1., 0., 0.]]))


def _distinct_prior(batch, height, width, seed=0):
    gen = torch.Generator().manual_seed(seed)
    depth = 1 + torch.randperm(
        batch * height * width, generator=gen).float().reshape(batch, height, width)
    return 1 / depth  # inverse depth, larger = nearer, all values distinct


def test_sampler_orders_pairs_and_picks_similar_neighbours():
    prior = _distinct_prior(2, 12, 16)
    groups = sample_ranking_groups(
        prior,
        200,
        box_size=(8, 10),
        radius=3,
        top_percent=0.3,
        generator=torch.Generator().manual_seed(1))
    assert groups.shape == (2, 200, 4) and groups.dtype == torch.int64
    flat = prior.reshape(2, -1)
    values = flat.gather(1, groups.reshape(2, -1)).reshape(groups.shape)
    assert torch.all(values[..., 0] >= values[..., 1])  # near first: larger inverse depth
    rows, cols = groups // 16, groups % 16
    for b in range(2):  # one box per image
        assert rows[b, :, :2].max() - rows[b, :, :2].min() < 8
        assert cols[b, :, :2].max() - cols[b, :, :2].min() < 10
    for point, nbr in ((0, 2), (1, 3)):
        dy, dx = rows[..., nbr] - rows[..., point], cols[..., nbr] - cols[..., point]
        assert dy.min() >= -3 and dy.max() <= 2 and dx.min() >= -3 and dx.max() <= 2
        assert rows[..., nbr].max() <= 10 and cols[..., nbr].max() <= 14  # never the last row or column
    # Each neighbour is among the int(0.3 n) window pixels closest to the point in the prior.
    for b in range(2):
        for g in range(200):
            for point, nbr in ((0, 2), (1, 3)):
                r, c = rows[b, g, point].item(), cols[b, g, point].item()
                window = prior[b, max(r - 3, 0):min(r + 3, 11), max(c - 3, 0):min(c + 3, 15)].reshape(-1)
                gaps = (window - prior[b, r, c]).abs().sort().values
                allowed = gaps[int(0.3 * window.numel()) - 1]
                assert (prior[b].reshape(-1)[groups[b, g, nbr]] - prior[b, r, c]).abs() <= allowed


def test_sampler_with_a_depth_prior_puts_smaller_depth_first():
    depth = 1 / _distinct_prior(1, 10, 10)
    groups = sample_ranking_groups(
        depth, 50, prior_is_depth=True, generator=torch.Generator().manual_seed(0))
    values = depth.reshape(1, -1).gather(1, groups.reshape(1, -1)).reshape(groups.shape)
    assert torch.all(values[..., 0] <= values[..., 1])


def test_registered_loss_distils_the_teacher_order():
    loss_fn = MODELS.build(
        dict(type='DepthRankingLoss', num_pairs=64, continuity_weight=0., loss_weight=2.))
    assert isinstance(loss_fn, DepthRankingLoss)
    prior = _distinct_prior(2, 20, 24)
    teacher_depth = 1 / prior
    good = loss_fn(teacher_depth[:, None] * 10, prior, generator=torch.Generator().manual_seed(0))
    # Only a pixel drawn twice (a tie) can cost anything, and then just the margin.
    assert good.item() <= 2 * 1e-4
    student = (-teacher_depth).clone().requires_grad_()
    bad = loss_fn(student, prior, generator=torch.Generator().manual_seed(0))
    assert bad.item() > 10
    bad.backward()
    assert student.grad.abs().sum() > 0


def test_reduction_and_weights():
    loss_fn = DepthRankingLoss(num_pairs=16)
    prior = _distinct_prior(2, 8, 8)
    student = -1 / prior
    per_group = loss_fn(
        student, prior, reduction_override='none', generator=torch.Generator().manual_seed(0))
    assert per_group.shape == (2, 16) and torch.all(per_group > 0)
    weighted = loss_fn(
        student,
        prior,
        weight=torch.tensor([0., 1.]),
        reduction_override='sum',
        generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(weighted, per_group[1].sum())
    with pytest.raises(ValueError, match='does not match'):
        loss_fn(student[:, :4], prior)


def test_groups_touching_pixels_without_a_teacher_value_do_not_count():
    loss_fn = DepthRankingLoss(num_pairs=32, box_size=(8, 8))
    prior = _distinct_prior(2, 8, 8)
    student = -1 / prior  # every group misordered: a positive loss each
    seed = 3
    per_group = loss_fn(student, prior, reduction_override='none', generator=torch.Generator().manual_seed(seed))
    groups = sample_ranking_groups(prior, 32, (8, 8), generator=torch.Generator().manual_seed(seed))
    valid = torch.ones(2, 8, 8, dtype=torch.bool)
    valid[:, :, :4] = False  # the left half has no teacher value
    complete = valid.reshape(2, -1).gather(1, groups.reshape(2, -1)).reshape(groups.shape).all(-1)
    assert 0 < complete.sum() < complete.numel()
    masked = loss_fn(student, prior, prior_valid=valid, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(masked, per_group[complete].mean())
    everywhere = loss_fn(student, prior, prior_valid=torch.ones_like(valid),
                         generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(everywhere, per_group.mean())
    nowhere = loss_fn(student, prior, prior_valid=torch.zeros_like(valid))
    assert nowhere.item() == 0
    with pytest.raises(ValueError, match='prior_valid'):
        loss_fn(student, prior, prior_valid=valid[:, :4])
