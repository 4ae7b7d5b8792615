"""OPEN's pixel-wise depth estimator (Hou et al., ECCV 2024, Sec. 3.2 "PDE"): a camera-aware depth net.

The features are gated by a squeeze-and-excitation vector computed from the camera intrinsics (BEVDepth's
camera awareness), refined by residual blocks and an ASPP, and two deformable-convolution heads predict
``D`` depth-bin logits and a direct depth. The pixel depth fuses both with a learnable gate (PGD-style):
``d = sigmoid(lambda) * d_direct + (1 - sigmoid(lambda)) * sum_k softmax(p)_k * bin_k``, the bins uniform
in [depth_start, depth_max].
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmcv.ops import DeformConv2dPack
from mmdet.models.backbones.resnet import BasicBlock
from torch import Tensor, nn

from perception.models.layers.position_embedding_3d import mlp


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: parallel dilated 3x3 convolutions, a 1x1 one and image pooling, fused by
    a 1x1 convolution (DeepLabv3)."""

    def __init__(self, channels: int, mid_channels: int, dilations: Sequence[int] = (1, 6, 12, 18)) -> None:
        super().__init__()
        norm_cfg = dict(type='BN')
        self.branches = nn.ModuleList(
            ConvModule(channels, mid_channels, 1 if d == 1 else 3, padding=0 if d == 1 else d, dilation=d,
                       norm_cfg=norm_cfg, bias=False) for d in dilations)
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1),
                                        ConvModule(channels, mid_channels, 1, norm_cfg=norm_cfg, bias=False))
        self.fuse = ConvModule(mid_channels * (len(dilations) + 1), channels, 1, norm_cfg=norm_cfg, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.image_pool(x).expand(-1, -1, *x.shape[-2:])
        return self.fuse(torch.cat([branch(x) for branch in self.branches] + [pooled], dim=1))


class CameraAwareDepthNet(nn.Module):
    """Pixel depth from stride-16 features and the camera intrinsics.

    Args:
        in_channels: feature channels.
        mid_channels: channels of the depth stem.
        num_bins: depth bins D (16).
        depth_range: (depth_start, depth_max) of the uniform bins, metres ((1, 61.2)).
        deform_groups: deformable groups of the two DCN heads.
    """

    def __init__(self, in_channels: int = 256, mid_channels: int = 256, num_bins: int = 16,
                 depth_range: Tuple[float, float] = (1.0, 61.2), deform_groups: int = 4) -> None:
        super().__init__()
        self.reduce_conv = ConvModule(in_channels, mid_channels, 3, padding=1, norm_cfg=dict(type='BN'))
        self.camera_mlp = mlp(6, mid_channels, mid_channels)
        self.se_reduce = nn.Conv2d(mid_channels, mid_channels, 1)
        self.se_expand = nn.Conv2d(mid_channels, mid_channels, 1)
        self.stem = nn.Sequential(*[BasicBlock(mid_channels, mid_channels) for _ in range(3)],
                                  ASPP(mid_channels, mid_channels // 4))
        self.prob_conv = DeformConv2dPack(mid_channels, num_bins, 3, padding=1, deform_groups=deform_groups)
        self.direct_conv = DeformConv2dPack(mid_channels, 1, 3, padding=1, deform_groups=deform_groups)
        self.fusion_logit = nn.Parameter(torch.tensor(1e-4))
        self.register_buffer('bins', torch.linspace(*depth_range, num_bins), persistent=False)

    def forward(self, x: Tensor, cam2img: Tensor) -> Tuple[Tensor, Tensor]:
        """``x`` (N, C, H, W) features, ``cam2img`` (N, 4, 4) intrinsics of the (augmented) input pixels.

        Returns:
            depth (N, 1, H, W) fused pixel depth (metres) and bin logits (N, D, H, W).
        """
        x = self.reduce_conv(x)
        camera = self.camera_mlp(cam2img[:, :2, :3].flatten(1) / 1e3)[..., None, None]
        x = x * self.se_expand(F.relu(self.se_reduce(camera))).sigmoid()
        x = self.stem(x)
        logits = self.prob_conv(x)
        bin_depth = (logits.softmax(dim=1) * self.bins[:, None, None]).sum(1, keepdim=True)
        gate = self.fusion_logit.sigmoid()
        return gate * self.direct_conv(x) + (1 - gate) * bin_depth, logits
