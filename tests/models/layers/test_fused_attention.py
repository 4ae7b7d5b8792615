"""FusedMultiheadAttention against mmcv's MultiheadAttention (nn.MultiheadAttention) with the same weights."""
import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import MultiheadAttention

from perception.models.layers import FusedMultiheadAttention
from perception.ops import philox_dropout

B, L, S, C, HEADS = 2, 6, 9, 16, 4


def pair(batch_first: bool = True, attn_drop: float = 0., proj_drop: float = 0.):
    """mmcv's attention and the fused one sharing its weights (random biases, so that no term is zero)."""
    torch.manual_seed(0)
    kwargs = dict(embed_dims=C, num_heads=HEADS, attn_drop=attn_drop, proj_drop=proj_drop, batch_first=batch_first)
    ref = MultiheadAttention(**kwargs)
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0., 0.5)
    fused = FusedMultiheadAttention(**kwargs)
    fused.load_state_dict(ref.state_dict())
    return ref, fused


def inputs(num_queries: int = L, num_keys: int = S):
    g = torch.Generator().manual_seed(1)
    return dict(query=torch.randn(B, num_queries, C, generator=g), key=torch.randn(B, num_keys, C, generator=g),
                value=torch.randn(B, num_keys, C, generator=g), query_pos=torch.randn(B, num_queries, C, generator=g),
                key_pos=torch.randn(B, num_keys, C, generator=g))


def test_parameters_named_as_nn_multihead_attention():
    ref, fused = pair()
    assert list(dict(fused.named_parameters())) == list(dict(ref.named_parameters()))
    assert {'attn.in_proj_weight', 'attn.in_proj_bias', 'attn.out_proj.weight'} <= set(fused.state_dict())


@pytest.mark.parametrize('batch_first', [True, False])
def test_cross_attention_equals_mmcv(batch_first):
    ref, fused = pair(batch_first)
    x = inputs()
    if not batch_first:
        x = {k: v.transpose(0, 1) for k, v in x.items()}
    torch.testing.assert_close(fused(**x), ref(**x), rtol=1e-5, atol=1e-5)


def test_self_attention_with_query_pos_equals_mmcv():
    """q = k = query + pos, v = query: the shared query/key projection."""
    ref, fused = pair()
    x = inputs(L, L)
    args = dict(query=x['query'], key=x['query'], value=x['query'], query_pos=x['query_pos'],
                key_pos=x['query_pos'])
    torch.testing.assert_close(fused(**args), ref(**args), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused(x['query'], query_pos=x['query_pos']),
                               ref(x['query'], query_pos=x['query_pos']), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('float_mask', [False, True])
def test_masks_equal_mmcv(float_mask):
    ref, fused = pair()
    x = inputs()
    g = torch.Generator().manual_seed(2)
    attn_mask = torch.rand(L, S, generator=g) < 0.3
    attn_mask[:, 0] = False  # every query keeps a key
    key_padding_mask = torch.zeros(B, S, dtype=torch.bool)
    key_padding_mask[0, -3:] = True
    if float_mask:
        attn_mask = torch.randn(L, S, generator=g).masked_fill(attn_mask, float('-inf'))
    for masks in (dict(attn_mask=attn_mask), dict(key_padding_mask=key_padding_mask),
                  dict(attn_mask=attn_mask, key_padding_mask=key_padding_mask)):
        torch.testing.assert_close(fused(**x, **masks), ref(**x, **masks), rtol=1e-5, atol=1e-5)


def test_groups_equal_a_block_diagonal_mask():
    """num_groups=G folds the groups into the batch: equal to mmcv's attention under the block-diagonal mask."""
    groups, per_group = 3, 4
    ref, fused = pair()
    x = inputs(groups * per_group, groups * per_group)
    args = dict(query=x['query'], key=x['query'], value=x['query'], query_pos=x['query_pos'])
    group = torch.arange(groups * per_group) // per_group
    expected = ref(**args, attn_mask=group[:, None] != group[None, :])
    torch.testing.assert_close(fused(**args, num_groups=groups), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='groups'):
        fused(**args, num_groups=5)


def test_dropout_draws_the_mask_of_nn_multihead_attention(monkeypatch):
    """In training, the attention dropout is perception's parallel-mask dropout of the (B * heads, L, S) weights:
    nn.MultiheadAttention with its weight dropout drawn by the same function from the same seed gives equal
    outputs and gradients."""
    ref, fused = pair(attn_drop=0.3)
    ref.train(), fused.train()
    x = inputs()
    outs, grads = [], []
    for module in (ref, fused):
        query = x['query'].clone().requires_grad_()
        with monkeypatch.context() as patch:
            if module is ref:  # nn.MultiheadAttention drops its weights with F.dropout
                patch.setattr(F, 'dropout',
                              lambda t, p=0.5, training=True, inplace=False: philox_dropout(t, p, training))
            torch.manual_seed(7)
            out = module(**dict(x, query=query))
        out.square().sum().backward()
        outs.append(out)
        grads.append((query.grad, module.attn.in_proj_weight.grad))
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-4)
    # and the dropout is on: another draw gives another output, eval mode none of them
    torch.manual_seed(8)
    assert not torch.allclose(fused(**x), outs[1])
    fused.eval(), ref.eval()
    assert not torch.allclose(fused(**x), outs[1])


def test_dropout_keeps_the_expectation():
    """Averaged over many draws, the training-mode output approaches the eval-mode one (the dropout is scaled
    by 1 / (1 - p))."""
    _, fused = pair(attn_drop=0.5)
    x = inputs()
    with torch.no_grad():
        expected = fused.eval()(**x)
        fused.train()
        torch.manual_seed(0)
        mean = torch.stack([fused(**x) for _ in range(400)]).mean(0)
        single = fused(**x)
    assert (mean - expected).abs().max() < 0.25 * (single - expected).abs().max()
