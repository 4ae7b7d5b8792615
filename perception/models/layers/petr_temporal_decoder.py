"""The StreamPETR temporal decoder (Wang et al., "Exploring Object-Centric Temporal Modeling for Efficient
Multi-View 3D Object Detection", ICCV 2023), on ``torch.nn.functional.scaled_dot_product_attention``.

Each layer: self-attention of the queries over themselves and the temporal memory (the memory entries are
extra keys/values, not queries), cross-attention to the image tokens with their 3D position embedding, FFN,
each followed by a LayerNorm (post-norm). The official code calls flash-attn for the cross-attention; SDPA
picks a fused kernel where one exists and runs everywhere else.
"""
from typing import Optional

import torch
from mmcv.cnn.bricks.transformer import FFN
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from perception.ops import scaled_dot_product_attention


class SDPAttention(nn.Module):
    """Multi-head attention (``nn.MultiheadAttention``'s projections) on SDPA, positions added to queries and keys.

    Args:
        embed_dims: channels.
        num_heads: heads.
        dropout: dropout on the attention weights (training) and on the output.
    """

    def __init__(self, embed_dims: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(embed_dims, embed_dims)
        self.k_proj = nn.Linear(embed_dims, embed_dims)
        self.v_proj = nn.Linear(embed_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, query_pos: Optional[Tensor] = None,
                key_pos: Optional[Tensor] = None, attn_mask: Optional[Tensor] = None) -> Tensor:
        """query (B, Q, C), key/value (B, K, C), attn_mask (Q, K) bool with True where attention is BLOCKED
        (mmdet/PETR convention). Returns (B, Q, C), the input query added (residual)."""
        q = self.q_proj(query if query_pos is None else query + query_pos)
        k = self.k_proj(key if key_pos is None else key + key_pos)
        v = self.v_proj(value)
        q, k, v = (t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2) for t in (q, k, v))
        out = scaled_dot_product_attention(q, k, v, attn_mask=None if attn_mask is None else ~attn_mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return query + self.proj_drop(self.out_proj(out.transpose(1, 2).flatten(2)))


class PETRTemporalDecoderLayer(nn.Module):
    """Self-attention (queries + memory keys), cross-attention (image tokens), FFN; post-norm.

    Args:
        embed_dims, num_heads, feedforward_channels, dropout: sizes and dropout.
        with_cp: gradient checkpointing in training (memory for compute).
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, feedforward_channels: int = 2048,
                 dropout: float = 0.1, with_cp: bool = False) -> None:
        super().__init__()
        self.self_attn = SDPAttention(embed_dims, num_heads, dropout)
        self.cross_attn = SDPAttention(embed_dims, num_heads, dropout)
        self.ffn = FFN(embed_dims, feedforward_channels, ffn_drop=dropout)
        self.norms = nn.ModuleList(nn.LayerNorm(embed_dims) for _ in range(3))
        self.with_cp = with_cp

    def _forward(self, query: Tensor, query_pos: Tensor, memory: Tensor, memory_pos: Tensor, temp_memory: Tensor,
                 temp_pos: Tensor, attn_mask: Optional[Tensor]) -> Tensor:
        keys = torch.cat([query, temp_memory], dim=1)
        key_pos = torch.cat([query_pos, temp_pos], dim=1)
        query = self.norms[0](self.self_attn(query, keys, keys, query_pos, key_pos, attn_mask))
        query = self.norms[1](self.cross_attn(query, memory, memory, query_pos, memory_pos))
        return self.norms[2](self.ffn(query))

    def forward(self, *args) -> Tensor:
        if self.with_cp and self.training:
            return checkpoint(self._forward, *args, use_reentrant=False)
        return self._forward(*args)


class PETRTemporalDecoder(nn.Module):
    """``num_layers`` :class:`PETRTemporalDecoderLayer` and a final LayerNorm applied to every layer's output.

    Args:
        num_layers: layers (6 in StreamPETR/OPEN).
        layer_cfg: keyword arguments of :class:`PETRTemporalDecoderLayer`.
    """

    def __init__(self, num_layers: int = 6, **layer_cfg) -> None:
        super().__init__()
        self.layers = nn.ModuleList(PETRTemporalDecoderLayer(**layer_cfg) for _ in range(num_layers))
        self.post_norm = nn.LayerNorm(self.layers[0].norms[0].normalized_shape)

    def forward(self, query: Tensor, query_pos: Tensor, memory: Tensor, memory_pos: Tensor, temp_memory: Tensor,
                temp_pos: Tensor, attn_mask: Optional[Tensor] = None) -> Tensor:
        """Queries (B, Q, C) with their positions, image tokens (B, N, C), temporal memory keys (B, M, C),
        ``attn_mask`` (Q, Q + M) True where blocked. Returns (num_layers, B, Q, C)."""
        outputs = []
        for layer in self.layers:
            query = layer(query, query_pos, memory, memory_pos, temp_memory, temp_pos, attn_mask)
            outputs.append(self.post_norm(query))
        return torch.stack(outputs)
