"""Dropout for the CPU with a counter-based (Philox4x32-10) mask.

torch's CPU dropout draws its mask with ``bernoulli_`` from one sequential Mersenne twister (about 11 ns per element
on the 2-core machine, 19 % of a MonoDETR training iteration); here each element's uniform number is a function of
(seed, index), filled in parallel, and kept bit-packed (one bit per element) for the backward pass.
Same distribution: element i is kept with probability 1 - p (to the 2^-24 resolution of torch's own float
uniforms) and scaled by 1 / (1 - p), independently of the others. The seed is drawn from torch's default generator,
so ``torch.manual_seed`` makes runs repeatable. On CUDA, or outside training, it is ``F.dropout``.
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd import Function
from torch.autograd.function import once_differentiable


def _ext():
    from perception import _ext
    return _ext


class PhiloxDropoutFunction(Function):
    """``x * keep / (1 - p)`` with the mask of ``seed``; the gradient is masked and scaled alike, with the mask kept
    bit-packed (n / 8 bytes) from the forward pass."""

    @staticmethod
    def forward(ctx, x: Tensor, p: float, seed: int) -> Tensor:
        out, mask = _ext().philox_dropout(x, p, seed)
        ctx.p = p
        ctx.save_for_backward(mask)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        mask, = ctx.saved_tensors
        return _ext().dropout_backward(grad, mask, ctx.p), None, None


def philox_dropout(x: Tensor, p: float, training: bool = True, seed: int = None) -> Tensor:
    """Dropout of ``x`` with probability ``p`` (see the module docstring); ``seed`` fixes the mask (default: drawn
    from torch's default generator)."""
    if not 0. <= p <= 1.:
        raise ValueError(f'dropout probability must be in [0, 1], got {p}')
    if not training or p == 0.:
        return x
    if x.is_cuda or not x.dtype.is_floating_point:
        return F.dropout(x, p, True)
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1, )).item())
    return PhiloxDropoutFunction.apply(x, p, seed)


class PhiloxDropout(nn.Dropout):
    """``nn.Dropout`` on :func:`philox_dropout` (``inplace`` is ignored: the output is always a new tensor)."""

    def forward(self, x: Tensor) -> Tensor:
        return philox_dropout(x, self.p, self.training)


def use_philox_dropout(model: nn.Module) -> int:
    """Replace every ``nn.Dropout`` of ``model`` (and subclasses that keep its ``forward``, as mmcv's ``Dropout``)
    by :class:`PhiloxDropout` with the same probability, in place; returns how many. Dropout has no state, so
    checkpoints are unaffected."""
    count = 0
    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, nn.Dropout) and type(child).forward is nn.Dropout.forward:
                setattr(module, name, PhiloxDropout(child.p))
                count += 1
    return count


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor = None,
                                 dropout_p: float = 0.) -> Tensor:
    """``F.scaled_dot_product_attention`` whose attention-weight dropout on the CPU is :func:`philox_dropout`.

    On the CPU, torch's SDPA with ``dropout_p > 0`` already falls back to matmul, softmax, dropout and matmul with a
    materialised attention map; this is that computation with the parallel mask. ``attn_mask``: bool True where
    attention is allowed, or float added to the logits (SDPA's convention). Without dropout, or on CUDA, it is SDPA.
    Half-precision inputs on the CPU (``torch.autocast('cpu')``) are computed in float32: torch's bfloat16 CPU
    kernel took five times the float32 time for its backward in the main job's training step.
    """
    if not q.is_cuda and q.dtype in (torch.bfloat16, torch.float16):
        if attn_mask is not None and attn_mask.is_floating_point():
            attn_mask = attn_mask.float()
        with torch.autocast('cpu', enabled=False):
            return scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask, dropout_p).to(q.dtype)
    if dropout_p == 0. or q.is_cuda:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
    scores = (q * q.shape[-1]**-0.5) @ k.transpose(-2, -1)
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float('-inf')) if attn_mask.dtype == torch.bool else scores + attn_mask
    return philox_dropout(scores.softmax(dim=-1), dropout_p) @ v
