"""mmcv's multi-head attention computed by torch's fused ``scaled_dot_product_attention``."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import MultiheadAttention
from torch import Tensor

from perception.ops import scaled_dot_product_attention
from perception.registry import MODELS


@MODELS.register_module()
class FusedMultiheadAttention(MultiheadAttention):
    """:class:`mmcv.cnn.bricks.transformer.MultiheadAttention` on ``F.scaled_dot_product_attention``.

    Same arguments, call and parameters (``attn.in_proj_weight``, ``attn.in_proj_bias``, ``attn.out_proj``: the
    inner ``nn.MultiheadAttention`` holds them), hence the same checkpoints and converters; what differs is that
    no attention map is returned or averaged over the heads, and that the attention-weight dropout ``attn_drop``
    is applied inside the fused call (training mode only, same probability; on the CPU with the parallel mask of
    :func:`perception.ops.philox_dropout`).

    ``num_groups`` G > 1 keeps the attention within each of G blocks of consecutive queries and keys (Group
    DETR's block-diagonal self-attention) by folding the blocks into the batch: no mask is built.
    """

    def forward(self,
                query: Tensor,
                key: Optional[Tensor] = None,
                value: Optional[Tensor] = None,
                identity: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None,
                key_pos: Optional[Tensor] = None,
                attn_mask: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None,
                num_groups: int = 1,
                **kwargs) -> Tensor:
        """
        Args:
            query: (B, L, C) if ``batch_first`` else (L, B, C).
            key: (B, S, C) or (S, B, C); None: ``query``.
            value: as ``key``; None: ``key``.
            identity: added to the output; None: ``query``.
            query_pos: added to ``query``.
            key_pos: added to ``key``; None: ``query_pos`` when shaped as ``key``.
            attn_mask: (L, S) or (B * num_heads, L, S); bool True where attention is not allowed, or float
                added to the logits (``nn.MultiheadAttention``'s convention).
            key_padding_mask: (B, S), True on padding.
            num_groups: G; query i attends to the keys of its block only (L and S split into G blocks).

        Returns:
            Shaped as ``query``.
        """
        if key is None:
            key = query
        if value is None:
            value = key
        if identity is None:
            identity = query
        if key_pos is None and query_pos is not None and query_pos.shape == key.shape:
            key_pos = query_pos
        # queries and keys are one tensor: one input projection for both
        same_qk = key is query and key_pos is query_pos
        if query_pos is not None:
            query = query + query_pos
        key = query if same_qk else key if key_pos is None else key + key_pos
        if not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)

        batch_size, num_queries, channels = query.shape
        num_keys = key.shape[1]
        if num_queries % num_groups or num_keys % num_groups:
            raise ValueError(f'{num_queries} queries and {num_keys} keys do not split into {num_groups} groups')
        if num_groups > 1 and (attn_mask is not None or key_padding_mask is not None):
            raise ValueError('num_groups > 1 takes no attention or key padding mask')
        weight, bias = self.attn.in_proj_weight, self.attn.in_proj_bias
        if same_qk:
            q, k = F.linear(query, weight[:2 * channels], bias[:2 * channels]).chunk(2, dim=-1)
        else:
            q = F.linear(query, weight[:channels], bias[:channels])
            k = F.linear(key, weight[channels:2 * channels], bias[channels:2 * channels])
        v = F.linear(value, weight[2 * channels:], bias[2 * channels:])

        def heads(x: Tensor) -> Tensor:
            # (B, G * N, C) -> (B * G, num_heads, N, C / num_heads)
            return x.reshape(batch_size * num_groups, x.shape[1] // num_groups, self.num_heads, -1).transpose(1, 2)

        out = scaled_dot_product_attention(
            heads(q), heads(k), heads(v),
            attn_mask=self._sdpa_mask(attn_mask, key_padding_mask, batch_size, num_queries, num_keys),
            dropout_p=self.attn.dropout if self.training else 0.)
        out = self.attn.out_proj(out.transpose(1, 2).reshape(batch_size, num_queries, channels))
        if not self.batch_first:
            out = out.transpose(0, 1)
        return identity + self.dropout_layer(self.proj_drop(out))

    def _sdpa_mask(self, attn_mask: Optional[Tensor], key_padding_mask: Optional[Tensor], batch_size: int,
                   num_queries: int, num_keys: int) -> Optional[Tensor]:
        """``nn.MultiheadAttention``'s masks as one SDPA mask broadcasting to (B, num_heads, L, S): bool True
        where attention is allowed, or float added to the logits."""
        if attn_mask is not None:
            if attn_mask.dim() == 3:
                attn_mask = attn_mask.view(batch_size, self.num_heads, num_queries, num_keys)
            attn_mask = ~attn_mask if attn_mask.dtype == torch.bool else attn_mask
        if key_padding_mask is None:
            return attn_mask
        keep = ~key_padding_mask.view(batch_size, 1, 1, num_keys)
        if attn_mask is None:
            return keep
        if attn_mask.dtype == torch.bool:
            return attn_mask & keep
        return attn_mask.masked_fill(~keep, float('-inf'))
