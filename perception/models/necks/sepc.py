"""SEPC: Scale-Equalizing Pyramid Convolution for Object Detection (Wang, Zhang et al., CVPR 2020).

A pyramid convolution (PConv) is a 3-D convolution over (scale, y, x): three 3x3 kernels shared by all
levels read the same level, the level above (then bilinearly upsampled) and the level below (with stride
2), eq. (1)-(2). Integrated BN normalises all levels with one set of statistics (sec. 3.3). The
scale-equalizing variant applies the shared kernel as a deformable convolution on the levels above the
first, so that the kernel can follow the scale of the objects (eq. (3)-(5)). The neck sits after an FPN
and replaces the stacked convs of a one-stage head: it returns separate classification and localisation
features per level, consumed by the heads of ``perception/models/dense_heads/sepc_heads.py``.

The four variants of the paper are flags: PConv (``pconv_deform=False, lcconv_deform=False,
ibn=False``), iBN+PConv (``ibn=True``), SEPC-lite (``lcconv_deform=True, ibn=True``) and SEPC (all on).
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import DeformConv2d
from mmengine.model import BaseModule
from torch import Tensor

from perception.registry import MODELS


def integrated_bn(feats: Sequence[Tensor], bn: nn.BatchNorm2d) -> List[Tensor]:
    """Batch-normalise all pyramid levels with statistics taken over all of them at once.

    Args:
        feats: L tensors (N, C, H_l, W_l).
        bn: the BN layer whose statistics and affine parameters all levels share.

    Returns:
        L tensors of the input shapes.
    """
    n, c = feats[0].shape[:2]
    flat = torch.cat([f.reshape(n, c, 1, -1) for f in feats], dim=-1)
    flat = bn(flat)
    chunks = flat.split([f.shape[2] * f.shape[3] for f in feats], dim=-1)
    return [chunk.reshape(f.shape) for chunk, f in zip(chunks, feats)]


class SEPCConv(DeformConv2d):
    """A conv whose kernel is shared by all pyramid levels; deformable on levels >= ``start_level``.

    The offsets come from a 3x3 conv on the same input, zero-initialised, so that at initialisation the
    module equals the plain shared conv (eq. (5) of the paper). With ``deform=False`` every level uses
    the plain conv.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: 1, or 2 for the branch that reads the finer level below.
        deform: whether levels >= ``start_level`` use the deformable conv.
        start_level: first level that is deformable (1: P3 stays a plain conv, as in the paper).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, deform: bool = False,
                 start_level: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size=3, stride=stride, padding=1)
        # mmcv's DeformConv2d has no bias; PConv's kernels have one.
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.deform = deform
        self.start_level = start_level
        if deform:
            self.conv_offset = nn.Conv2d(
                in_channels, 2 * 3 * 3, kernel_size=3, stride=stride, padding=1, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Also called by DeformConv2d.__init__, before the bias and the offset conv exist.
        nn.init.normal_(self.weight, 0, 0.01)
        if hasattr(self, 'bias'):
            nn.init.zeros_(self.bias)
        if hasattr(self, 'conv_offset'):
            nn.init.zeros_(self.conv_offset.weight)
            nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: Tensor, level: int) -> Tensor:
        """Apply the shared kernel to ``x`` (N, C_in, H, W) for output level ``level``.

        ``level`` is the index of the level this conv writes to (also for the stride-2 branch that reads
        level ``level - 1``), as in the official code.
        """
        if not self.deform or level < self.start_level:
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
        offset = self.conv_offset(x)
        out_h, out_w = offset.shape[-2:]
        pad_h, pad_w = max(3 - x.shape[-2], 0), max(3 - x.shape[-1], 0)
        if pad_h or pad_w:
            # mmcv pads maps smaller than the kernel itself but crops the output as if the stride were
            # 1; zero rows and columns at the far end are the conv's own zero padding.
            x = F.pad(x, (0, pad_w, 0, pad_h))
            full_h = (x.shape[-2] - 1) // self.stride[0] + 1
            full_w = (x.shape[-1] - 1) // self.stride[1] + 1
            offset = F.pad(offset, (0, full_w - out_w, 0, full_h - out_h))
        out = super().forward(x, offset)[..., :out_h, :out_w]
        return out + self.bias.view(1, -1, 1, 1)


class PConv(nn.Module):
    """One pyramid convolution, eq. (2) of the paper.

    ``y_l = w1 * x_l + up(w0 * x_{l+1}) + w2 *_{s2} x_{l-1}``, terms outside the pyramid dropped, then
    (integrated) BN and ReLU. ``up`` is bilinear with ``align_corners=True`` to the size of level l.

    Args:
        channels: channels of every level (in and out).
        deform: whether the three kernels are scale-equalizing (deformable above the first level).
        ibn: whether to apply integrated BN before the ReLU.
    """

    def __init__(self, channels: int = 256, deform: bool = False, ibn: bool = False) -> None:
        super().__init__()
        self.conv_up = SEPCConv(channels, channels, deform=deform)  # w0, reads level l + 1
        self.conv_same = SEPCConv(channels, channels, deform=deform)  # w1, reads level l
        self.conv_down = SEPCConv(channels, channels, stride=2, deform=deform)  # w2, reads level l - 1
        self.bn = nn.BatchNorm2d(channels) if ibn else None

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Map L levels (N, C, H_l, W_l), each about half the size of the one before, to L levels."""
        outs = []
        for level, feat in enumerate(feats):
            out = self.conv_same(feat, level)
            if level > 0:
                out = out + self.conv_down(feats[level - 1], level)
            if level < len(feats) - 1:
                out = out + F.interpolate(
                    self.conv_up(feats[level + 1], level), size=out.shape[-2:], mode='bilinear',
                    align_corners=True)
            outs.append(out)
        if self.bn is not None:
            outs = integrated_bn(outs, self.bn)
        return [F.relu(out) for out in outs]


@MODELS.register_module()
class SEPC(BaseModule):
    """The SEPC neck: stacked pyramid convs, then separate classification / localisation convs.

    Args:
        in_channels: channels of every input level (an FPN's output).
        num_levels: number of pyramid levels (5 for P3-P7).
        num_pconvs: number of stacked pyramid convs (4 replace the 4 stacked convs of RetinaNet).
        pconv_deform: scale-equalizing kernels in the pyramid convs.
        lcconv_deform: scale-equalizing kernels in the final cls/loc convs (SEPC-lite and SEPC).
        ibn: integrated BN after every pyramid conv and the cls/loc convs; needs >= 4 images per GPU
            (the authors report ~0.3 AP less with 2).
        init_cfg: the convs initialise themselves (N(0, 0.01), zero bias, zero offsets).

    Input: ``num_levels`` tensors (N, C, H_l, W_l). Output: a tuple of ``num_levels`` pairs
    ``(cls_feat, loc_feat)``, both (N, C, H_l, W_l), after ReLU.
    """

    def __init__(self, in_channels: int = 256, num_levels: int = 5, num_pconvs: int = 4,
                 pconv_deform: bool = False, lcconv_deform: bool = False, ibn: bool = False,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_levels = num_levels
        self.pconvs = nn.ModuleList(
            PConv(in_channels, deform=pconv_deform, ibn=ibn) for _ in range(num_pconvs))
        self.cls_conv = SEPCConv(in_channels, in_channels, deform=lcconv_deform)
        self.loc_conv = SEPCConv(in_channels, in_channels, deform=lcconv_deform)
        self.cls_bn = nn.BatchNorm2d(in_channels) if ibn else None
        self.loc_bn = nn.BatchNorm2d(in_channels) if ibn else None

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tuple[Tensor, Tensor], ...]:
        if len(feats) != self.num_levels:
            raise ValueError(f'SEPC expects {self.num_levels} pyramid levels, got {len(feats)}')
        for pconv in self.pconvs:
            feats = pconv(feats)
        cls_feats = [self.cls_conv(feat, level) for level, feat in enumerate(feats)]
        loc_feats = [self.loc_conv(feat, level) for level, feat in enumerate(feats)]
        if self.cls_bn is not None:
            cls_feats = integrated_bn(cls_feats, self.cls_bn)
            loc_feats = integrated_bn(loc_feats, self.loc_bn)
        return tuple((F.relu(c), F.relu(r)) for c, r in zip(cls_feats, loc_feats))
