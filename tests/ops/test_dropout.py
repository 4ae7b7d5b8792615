"""Philox dropout (CPU): distribution, determinism, gradient, and the attention that uses it."""
import math

import pytest
import torch
import torch.nn.functional as F

from perception.ops import philox_dropout, scaled_dot_product_attention


@pytest.mark.parametrize('p', [0.1, 0.5])
def test_keep_fraction_and_scale(p):
    x = torch.randn(1_000_003)
    y = philox_dropout(x, p, seed=7)
    keep = y != 0
    n = x.numel()
    # binomial: within 6 standard deviations of n (1 - p)
    assert abs(keep.sum().item() - n * (1 - p)) < 6 * math.sqrt(n * p * (1 - p))
    torch.testing.assert_close(y[keep], x[keep] / (1 - p))


def test_mask_is_philox4x32_10():
    # Random123's known answer for philox4x32_10, counter 0 and key 0: 6627e8d5 e169c58d bc57ac4c 9b00dbd8;
    # element j keeps iff (word j >> 8) / 2^24 >= p, i.e. u = 0.3990, 0.8805, 0.7357, 0.6055
    ones = torch.ones(4)
    for p, kept in [(0.39, [1, 1, 1, 1]), (0.4, [0, 1, 1, 1]), (0.61, [0, 1, 1, 0]), (0.74, [0, 1, 0, 0]),
                    (0.89, [0, 0, 0, 0])]:
        assert (philox_dropout(ones, p, seed=0) != 0).int().tolist() == kept, p


def test_every_length_and_the_tail_of_the_last_block():
    # blocks of 64 elements (16 counters) and mask bytes of 8: lengths around their edges give the same mask
    # as the same elements of a longer tensor, and the gradient uses the same bits
    long = philox_dropout(torch.ones(1000), 0.5, seed=9) != 0
    for n in (1, 7, 8, 9, 63, 64, 65, 129):
        x = torch.ones(n, requires_grad=True)
        y = philox_dropout(x, 0.5, seed=9)
        assert torch.equal(y != 0, long[:n]), n
        y.sum().backward()
        assert torch.equal(x.grad, (y != 0) * 2.), n


def test_neighbours_are_independent():
    p = 0.3
    keep = philox_dropout(torch.ones(1_000_000), p, seed=3) != 0
    pairs = (keep[:-1] & keep[1:]).float().mean().item()  # within and across the 4-output Philox blocks
    assert abs(pairs - (1 - p)**2) < 0.005
    strided = (keep[:-4] & keep[4:]).float().mean().item()  # the same lane of consecutive counters
    assert abs(strided - (1 - p)**2) < 0.005


def test_seed_determines_the_mask_whatever_the_threads():
    x = torch.randn(50_001)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = philox_dropout(x, 0.2, seed=11)
        torch.set_num_threads(2)
        two = philox_dropout(x, 0.2, seed=11)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)
    assert not torch.equal(one, philox_dropout(x, 0.2, seed=12))
    torch.manual_seed(0)
    a = philox_dropout(x, 0.2)
    torch.manual_seed(0)
    assert torch.equal(a, philox_dropout(x, 0.2))


def test_gradient_is_the_same_mask():
    x = torch.rand(3, 1001, dtype=torch.float64) + 0.5
    x.requires_grad_(True)
    y = philox_dropout(x, 0.25, seed=5)
    g = torch.randn_like(y)
    y.backward(g)
    torch.testing.assert_close(x.grad, g * (y != 0) / 0.75)


def test_identity_cases_and_dtypes():
    x = torch.randn(4, 5)
    assert philox_dropout(x, 0.0) is x
    assert philox_dropout(x, 0.5, training=False) is x
    assert torch.equal(philox_dropout(x, 1.0, seed=1), torch.zeros_like(x))
    bf = philox_dropout(x.bfloat16(), 0.5, seed=2)
    assert bf.dtype == torch.bfloat16
    assert torch.equal(bf != 0, philox_dropout(x, 0.5, seed=2) != 0)
    with pytest.raises(ValueError):
        philox_dropout(x, 1.5)


@pytest.mark.parametrize('mask_kind', [None, 'bool', 'float'])
def test_attention_matches_sdpa(mask_kind):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 8)
    mask = None
    if mask_kind == 'bool':
        mask = torch.rand(2, 1, 5, 7) > 0.3
        mask[..., 0] = True  # no row without keys
    elif mask_kind == 'float':
        mask = torch.randn(5, 7)
    # a vanishing dropout probability takes the explicit path and keeps everything (up to 2^-24)
    out = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=1e-9)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('mask_kind', [None, 'float'])
def test_attention_under_cpu_autocast_is_computed_in_float32(mask_kind):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, requires_grad=True), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 8))
    mask = torch.randn(5, 7) if mask_kind else None
    half = [t.bfloat16() for t in (q, k, v)]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = scaled_dot_product_attention(*half, attn_mask=None if mask is None else mask.bfloat16())
    assert out.dtype == torch.bfloat16
    # exactly the float32 attention of the bfloat16 inputs, rounded once at the end
    expected = F.scaled_dot_product_attention(*[t.float() for t in half],
                                              attn_mask=None if mask is None else mask.bfloat16().float())
    assert torch.equal(out, expected.bfloat16())
    out.float().sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_attention_dropout_is_on_the_weights():
    q, k, v = torch.randn(1, 2, 4, 8), torch.randn(1, 2, 6, 8), torch.randn(1, 2, 6, 8)
    torch.manual_seed(1)
    out = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    torch.manual_seed(1)
    weights = philox_dropout((q @ k.transpose(-2, -1) / math.sqrt(8)).softmax(-1), 0.5)
    torch.testing.assert_close(out, weights @ v)
    assert (weights == 0).any() and not torch.equal(out, F.scaled_dot_product_attention(q, k, v))


def test_use_philox_dropout_swaps_every_plain_dropout():
    from mmcv.cnn.bricks.drop import Dropout as MMCVDropout
    from mmcv.cnn.bricks.transformer import FFN

    from perception.ops import PhiloxDropout, use_philox_dropout

    class Custom(torch.nn.Dropout):
        def forward(self, x):
            return x

    model = torch.nn.Sequential(FFN(embed_dims=8, feedforward_channels=16, ffn_drop=0.1), MMCVDropout(0.2),
                                Custom(0.3), torch.nn.Dropout2d(0.4))
    state = model.state_dict()
    assert use_philox_dropout(model) == 3
    swapped = [m for m in model.modules() if isinstance(m, PhiloxDropout)]
    assert sorted(m.p for m in swapped) == [0.1, 0.1, 0.2]
    assert type(model[2]) is Custom and type(model[3]) is torch.nn.Dropout2d
    assert model.state_dict().keys() == state.keys()
    x = torch.randn(2, 5, 8)
    model.eval()
    torch.testing.assert_close(model[0](x), model[0].layers(x) + x)
