"""Layers of TiO-Depth (see :mod:`.tiodepth`): disparity bins, horizontal warps, the dual-path decoder with
its feature-aggregation (SDFA) and monocular-feature-matching (MFM) blocks, occlusion and plane masks, and
the VGG19 feature extractor of the perceptual loss.

Conventions. Disparities are in pixels of the network input. A view's stereo ``direction`` is +1 when its
partner camera lies to its right (the left view of a rectified pair: a point at column ``u`` and
disparity ``d`` is seen at ``u - d`` in the partner) and -1 otherwise; a horizontal flip of both images
negates it. All warps use ``grid_sample`` with ``align_corners=True``.
"""
import math
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.layers import SELayer
from torch import Tensor, nn


def exponential_disparity_bins(num_bins: int = 49, min_disp: float = 2., max_disp: float = 300.) -> Tensor:
    """TiO-Depth's discrete disparities ``d_k = max (max / min)^(k / (N - 1) - 1)``, ``k = 0 .. N - 1``.

    They run geometrically from ``min_disp`` (k = 0) to ``max_disp`` (k = N - 1), so depth
    ``fx * baseline / d_k`` is sampled evenly in log-depth.

    Returns:
        (N,) float32 disparities in pixels, increasing.
    """
    if num_bins < 2 or not 0 < min_disp < max_disp:
        raise ValueError(f'need num_bins >= 2 and 0 < min_disp < max_disp, got {num_bins}, {min_disp}, '
                         f'{max_disp}')
    exponent = torch.arange(num_bins, dtype=torch.float64) / (num_bins - 1) - 1
    return (max_disp * (max_disp / min_disp)**exponent).float()


def _shifted_grids(shifts: Tensor, height: int, width: int) -> Tensor:
    """Sampling grids that read column ``u - shift`` of a (height, width) map.

    Args:
        shifts: (B, K) shifts in pixels of that map.

    Returns:
        (B, K, height, width, 2) normalised ``grid_sample`` coordinates (align_corners=True).
    """
    batch, num = shifts.shape
    xs = torch.linspace(-1, 1, width, device=shifts.device, dtype=shifts.dtype)
    ys = torch.linspace(-1, 1, height, device=shifts.device, dtype=shifts.dtype)
    grid_x = xs.view(1, 1, 1, width) - shifts.view(batch, num, 1, 1) * (2 / max(width - 1, 1))
    grid_x = grid_x.expand(batch, num, height, width)
    grid_y = ys.view(1, 1, height, 1).expand(batch, num, height, width)
    return torch.stack([grid_x, grid_y], dim=-1)


def warp_by_disparities(x: Tensor, disparities: Tensor, direction: Tensor, input_width: int,
                        padding_mode: str = 'border') -> Tensor:
    """Read a map at every candidate disparity: ``out[:, :, k, v, u] = x[:, :, v, u - direction d_k]``.

    With ``direction`` the target view's, ``x`` of the partner view and ``d_k`` the target's disparity,
    slice ``k`` is the partner map warped into the target view (MFM's matching volume).

    Args:
        x: (B, C, H, W) map, at any resolution of an input ``input_width`` pixels wide.
        disparities: (K,) disparities in input pixels (scaled by ``W / input_width`` here).
        direction: (B,) +1 or -1 per sample.
        input_width: width of the network input.
        padding_mode: ``grid_sample`` padding.

    Returns:
        (B, C, K, H, W) warped maps.
    """
    batch, channels, height, width = x.shape
    shifts = direction.to(x).view(-1, 1) * disparities.to(x).view(1, -1) * (width / input_width)
    grid = _shifted_grids(shifts.expand(batch, -1), height, width)
    num = disparities.numel()
    out = F.grid_sample(x, grid.reshape(batch, num * height, width, 2), mode='bilinear',
                        padding_mode=padding_mode, align_corners=True)
    return out.view(batch, channels, num, height, width)


def warp_volume_by_disparities(volume: Tensor, disparities: Tensor, direction: Tensor,
                               padding_mode: str = 'zeros') -> Tensor:
    """Shift each slice of a disparity volume by its own disparity: ``out[:, k, v, u] = V[:, k, v, u -
    direction d_k]``.

    Args:
        volume: (B, K, H, W) per-bin map at the input resolution.
        disparities: (K,) disparities in pixels.
        direction: (B,) +1 or -1 per sample.

    Returns:
        (B, K, H, W).
    """
    batch, num, height, width = volume.shape
    shifts = direction.to(volume).view(-1, 1) * disparities.to(volume).view(1, -1)
    grid = _shifted_grids(shifts.expand(batch, -1), height, width)
    out = F.grid_sample(volume.reshape(batch * num, 1, height, width), grid.reshape(batch * num, height, width, 2),
                        mode='bilinear', padding_mode=padding_mode, align_corners=True)
    return out.view(batch, num, height, width)


def render_partner_view(logits: Tensor, image: Tensor, disparities: Tensor, direction: Tensor) -> Tensor:
    """TiO-Depth's discrete view synthesis: the partner view drawn from a view and its disparity volume.

    A partner pixel ``u`` sees target pixel ``u + direction d_k`` if that pixel has disparity ``d_k``, so
    ``I'(u) = sum_k softmax_k(V(u + direction d_k, k)) I(u + direction d_k)``: the logit volume is warped
    bin by bin and normalised in the partner view, which resolves occlusions by the logits (the
    ``Mono_photo_discrete`` synthesis of the official code).

    Args:
        logits: (B, K, H, W) disparity logits of the view of ``image``.
        image: (B, C, H, W) that view.
        disparities: (K,) disparities of the bins in pixels of ``image``.
        direction: (B,) stereo direction of that view.

    Returns:
        (B, C, H, W) the synthesised partner view.
    """
    prob = warp_volume_by_disparities(logits, disparities, -direction).softmax(1)
    candidates = warp_by_disparities(image, disparities, -direction, image.shape[-1])
    return (prob.unsqueeze(1) * candidates).sum(2)


def warp_by_disparity(source: Tensor, disp: Tensor, direction: Tensor) -> Tuple[Tensor, Tensor]:
    """Backward warp of the partner view into a view with a per-pixel disparity.

    Args:
        source: (B, C, H, W) partner image.
        disp: (B, 1, H, W) disparity of the target view in pixels of this resolution.
        direction: (B,) stereo direction of the target view.

    Returns:
        The warped image (B, C, H, W) (border padding) and a (B, 1, H, W) mask, 1 where the sampled
        column lies inside the partner image.
    """
    batch, _, height, width = source.shape
    xs = torch.linspace(-1, 1, width, device=source.device, dtype=source.dtype).view(1, 1, width)
    ys = torch.linspace(-1, 1, height, device=source.device, dtype=source.dtype).view(1, height, 1)
    grid_x = xs - direction.to(source).view(-1, 1, 1) * disp[:, 0] * (2 / max(width - 1, 1))
    grid = torch.stack([grid_x, ys.expand_as(grid_x)], dim=-1)
    warped = F.grid_sample(source, grid, mode='bilinear', padding_mode='border', align_corners=True)
    inside = ((grid_x >= -1) & (grid_x <= 1)).unsqueeze(1).to(source)
    return warped, inside


def sample_with_offsets(x: Tensor, offsets: Tensor) -> Tensor:
    """Bilinear resampling of ``x`` at its pixel grid moved by ``offsets`` (zero outside).

    Args:
        x: (B, C, H, W).
        offsets: (B, 2, H, W) x and y offsets in pixels.
    """
    batch, _, height, width = x.shape
    xs = torch.linspace(-1, 1, width, device=x.device, dtype=x.dtype).view(1, 1, width)
    ys = torch.linspace(-1, 1, height, device=x.device, dtype=x.dtype).view(1, height, 1)
    grid_x = xs + offsets[:, 0] * (2 / max(width - 1, 1))
    grid_y = ys + offsets[:, 1] * (2 / max(height - 1, 1))
    return F.grid_sample(x, torch.stack([grid_x, grid_y], dim=-1), mode='bilinear', align_corners=True)


class Conv3x3(nn.Sequential):
    """Reflection padding and a 3x3 convolution (monodepth2's layer)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(nn.ReflectionPad2d(1), nn.Conv2d(in_channels, out_channels, 3, bias=bias))


class ConvBlock(nn.Sequential):
    """:class:`Conv3x3` and ELU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(Conv3x3(in_channels, out_channels), nn.ELU(inplace=True))


def _offset_generator(channels: int) -> nn.Sequential:
    """Offsets (B, 2, H, W) from the concatenated pair of maps; zero at initialisation."""
    layers = nn.Sequential(
        nn.Conv2d(channels * 2, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ELU(),
        Conv3x3(channels, 2, bias=False))
    nn.init.zeros_(layers[3][1].weight)
    return layers


class SDFABlock(nn.Module):
    """Self-distilled feature aggregation: align the upsampled decoder feature and the skip feature by
    learned offsets before adding them.

    The skip feature is projected to the decoder's channels; two offset generators read the pair and
    resample the decoder feature and the skip feature respectively. With ``distilled`` the block owns a
    second generator for the skip feature, used by the refined (distilled) monocular path only.

    Args:
        skip_channels: channels of the encoder feature.
        channels: channels of the decoder feature.
        distilled: add the distilled path's own skip-offset generator.
    """

    def __init__(self, skip_channels: int, channels: int, distilled: bool = False) -> None:
        super().__init__()
        self.skip_proj = ConvBlock(skip_channels, channels)
        self.offset_up = _offset_generator(channels)
        self.offset_skip = _offset_generator(channels)
        self.offset_skip_distilled = _offset_generator(channels) if distilled else None

    def forward(self, up: Tensor, skip: Tensor, distilled: bool = False) -> Tensor:
        """
        Args:
            up: (B, C, H, W) upsampled decoder feature.
            skip: (B, C_skip, H, W) encoder feature of the same size.
            distilled: use the distilled skip-offset generator (it must exist).
        """
        skip = self.skip_proj(skip)
        pair = torch.cat([up, skip], 1)
        offset_skip = self.offset_skip_distilled if distilled else self.offset_skip
        if offset_skip is None:
            raise ValueError('this SDFA block has no distilled branch')
        return sample_with_offsets(up, self.offset_up(pair)) + sample_with_offsets(skip, offset_skip(pair))


class MonocularFeatureMatching(nn.Module):
    """MFM (``CA_Block_V2`` of the official code): a cost volume between the two views' decoder features.

    ``q = 1x1(F_t)``, ``k = 1x1(F_p)`` with C/4 channels; ``k`` is warped into the target view at every
    candidate disparity; ``c_k = <q, warp_k(k)> / sqrt(C / 4)``; the target feature becomes
    ``ELU(SE(3x3([F_t, softmax_k(c)])))``. The raw costs are returned for the cost loss.

    Args:
        channels: channels C of the decoder feature, at least 16 (the SE block's reduction).
        num_bins: number of candidate disparities K.
    """

    def __init__(self, channels: int, num_bins: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, channels // 4, 1)
        self.key = nn.Conv2d(channels, channels // 4, 1)
        se = SELayer(channels, ratio=16, act_cfg=(dict(type='ReLU'), dict(type='Sigmoid')))
        # The official SE block is two bias-free nn.Linear layers; mmdet's has 1x1 convolutions with biases and
        # Kaiming-normal weights. Zero biases and nn.Linear's initialisation start it as the official block (the
        # biases then train).
        for conv in (se.conv1.conv, se.conv2.conv):
            nn.init.kaiming_uniform_(conv.weight, a=math.sqrt(5))
            nn.init.zeros_(conv.bias)
        self.fuse = nn.Sequential(Conv3x3(channels + num_bins, channels), se, nn.ELU())

    def cost_volume(self, target: Tensor, partner: Tensor, disparities: Tensor, direction: Tensor,
                    input_width: int) -> Tensor:
        """(B, K, H, W) matching costs of the target feature against the warped partner feature."""
        query = self.query(target)
        key = warp_by_disparities(self.key(partner), disparities, direction, input_width)
        return (query.unsqueeze(2) * key).sum(1) / math.sqrt(query.shape[1])

    def forward(self, target: Tensor, partner: Tensor, disparities: Tensor, direction: Tensor,
                input_width: int) -> Tuple[Tensor, Tensor]:
        """
        Args:
            target, partner: (B, C, H, W) decoder features of the two views.
            disparities: (K,) disparities in input pixels.
            direction: (B,) stereo direction of the target view.
            input_width: width of the network input.

        Returns:
            The matched target feature (B, C, H, W) and the costs (B, K, H, W).
        """
        cost = self.cost_volume(target, partner, disparities, direction, input_width)
        return self.fuse(torch.cat([target, cost.softmax(1)], 1)), cost


class DualPathDecoder(nn.Module):
    """TiO-Depth's Siamese dual-path decoder (``DPDecoder`` with ``SDFARaw``, ``MFM`` and ``FinalBranch``).

    Level ``i`` (from ``L = len(channels) - 1`` down to 0) runs ``ConvBlock``, nearest upsampling to the
    size of encoder feature ``i - 1`` (level 0: the input size), SDFA fusion with that feature (levels
    >= 1), a second ``ConvBlock`` and, on the stereo path at the ``mfm_levels``, MFM between the two
    views. A 3x3 head gives ``num_bins`` disparity logits at the input resolution. The monocular path
    skips MFM; its distilled variant (refined mono) swaps in the distilled skip-offset generators at the
    ``distill_levels`` and its own head.

    Args:
        in_channels: channels of the encoder features, finest first (strides 2, 4, 8, 16 for Swin-T-s2).
        channels: decoder channels of levels 0 .. L.
        num_bins: disparity bins K.
        mfm_levels: levels with monocular feature matching.
        distill_levels: levels with a distilled skip-offset generator.
    """

    def __init__(self, in_channels: Sequence[int], channels: Sequence[int] = (64, 128, 256, 256),
                 num_bins: int = 49, mfm_levels: Sequence[int] = (3, 2, 1),
                 distill_levels: Sequence[int] = (3, 2, 1)) -> None:
        super().__init__()
        if len(in_channels) != len(channels):
            raise ValueError(f'{len(in_channels)} encoder levels for {len(channels)} decoder levels')
        self.num_levels = len(channels)
        top = self.num_levels - 1
        for levels, name in ((mfm_levels, 'mfm_levels'), (distill_levels, 'distill_levels')):
            if not set(levels) <= set(range(1, self.num_levels)):
                raise ValueError(f'{name} must lie in 1 .. {top}, got {levels}')
        self.mfm_levels = tuple(mfm_levels)
        self.distill_levels = tuple(distill_levels)
        self.up_convs = nn.ModuleList(
            ConvBlock(in_channels[-1] if i == top else channels[i + 1], channels[i]) for i in range(self.num_levels))
        self.fusions = nn.ModuleDict({
            str(i): SDFABlock(in_channels[i - 1], channels[i], distilled=i in self.distill_levels)
            for i in range(1, self.num_levels)
        })
        self.convs = nn.ModuleList(ConvBlock(c, c) for c in channels)
        self.head = Conv3x3(channels[0], num_bins)
        self.matching = nn.ModuleDict(
            {str(i): MonocularFeatureMatching(channels[i], num_bins)
             for i in self.mfm_levels})
        self.distilled_head = Conv3x3(channels[0], num_bins)

    def _level(self, i: int, x: Tensor, feats: List[Tensor], size: Tuple[int, int], distilled: bool) -> Tensor:
        x = self.up_convs[i](x)
        target_size = tuple(feats[i - 1].shape[-2:]) if i > 0 else size
        x = F.interpolate(x, size=target_size, mode='nearest')
        if i > 0:
            x = self.fusions[str(i)](x, feats[i - 1], distilled=distilled and i in self.distill_levels)
        return self.convs[i](x)

    def forward_mono(self, feats: List[Tensor], size: Tuple[int, int], distilled: bool = False) -> Tensor:
        """Monocular path.

        Args:
            feats: encoder features, finest first.
            size: (H, W) of the input.
            distilled: the refined-mono path (distilled offsets and head).

        Returns:
            (B, K, H, W) disparity logits.
        """
        x = feats[-1]
        for i in reversed(range(self.num_levels)):
            x = self._level(i, x, feats, size, distilled)
        return (self.distilled_head if distilled else self.head)(x)

    def forward_stereo(self, feats: List[Tensor], partner_feats: List[Tensor], size: Tuple[int, int],
                       disparities: Tensor, direction: Tensor) -> Tuple[Tensor, Tensor, Dict[int, Tensor]]:
        """Stereo path: both views through the shared levels, exchanging information at the MFM levels.

        Args:
            feats, partner_feats: encoder features of the target view and of its partner.
            size: (H, W) of the input.
            disparities: (K,) disparities in input pixels.
            direction: (B,) stereo direction of the target view.

        Returns:
            Logits (B, K, H, W) of the target and of the partner view, and the target's MFM costs
            {level: (B, K, H_i, W_i)}.
        """
        x, y = feats[-1], partner_feats[-1]
        costs = {}
        for i in reversed(range(self.num_levels)):
            x = self._level(i, x, feats, size, False)
            y = self._level(i, y, partner_feats, size, False)
            if i in self.mfm_levels:
                mfm = self.matching[str(i)]
                x_new, costs[i] = mfm(x, y, disparities, direction, size[1])
                y, _ = mfm(y, x, disparities, -direction, size[1])
                x = x_new
        return self.head(x), self.head(y), costs

    def parameter_groups(self) -> Dict[str, List[nn.Parameter]]:
        """The official split: ``matching`` (MFM, "CA"), ``distill`` (distilled offsets and head, "MO"),
        ``decoder`` (the rest, "DE")."""
        matching = list(self.matching.parameters())
        distill = list(self.distilled_head.parameters())
        for fusion in self.fusions.values():
            if fusion.offset_skip_distilled is not None:
                distill += list(fusion.offset_skip_distilled.parameters())
        special = {id(p) for p in matching + distill}
        decoder = [p for p in self.parameters() if id(p) not in special]
        return dict(matching=matching, distill=distill, decoder=decoder)


@torch.no_grad()
def self_occlusion_mask(disp: Tensor, direction: Tensor, min_disp: int = 1, max_disp: int = 60) -> Tensor:
    """Soft mask of the pixels of a view that stay visible in its partner (``SelfOccluMask(1, 60)``).

    A pixel at ``u`` with disparity ``d(u)`` is hidden in the partner when a pixel ``k`` columns towards
    the partner's side has a disparity larger by ``k``; the mask is
    ``clamp(min_k |d_bar(u) - d(u + direction k) + k|, 0, 1)`` for ``k = min_disp + 2 .. max_disp + 1``,
    where ``d_bar(u)`` averages columns ``u`` and ``u + direction`` and every term is a mean over 3 rows
    (replicate padding), as in the official code.

    Args:
        disp: (B, 1, H, W) disparity in pixels of this resolution.
        direction: (B,) stereo direction of the view.

    Returns:
        (B, 1, H, W): about 1 where visible in the partner, towards 0 where occluded.
    """
    def towards_right(d: Tensor) -> Tensor:
        rows = F.avg_pool2d(F.pad(d, (0, max_disp + 1, 1, 1), mode='replicate'), (3, 1), stride=1)
        width = d.shape[-1]
        centre = (rows[..., :width] + rows[..., 1:width + 1]) / 2
        mask = None
        for k in range(min_disp + 2, max_disp + 2):
            cost = (centre - rows[..., k:k + width] + k).abs()
            mask = cost if mask is None else torch.minimum(mask, cost)
        return mask.clamp(0, 1)

    right = towards_right(disp)
    left = towards_right(disp.flip(-1)).flip(-1)
    return torch.where(direction.view(-1, 1, 1, 1) > 0, right, left)


@torch.no_grad()
def plane_mask(depth: Tensor, threshold: float = 0.13) -> Tensor:
    """``LapMask``: 1 on smooth depth, falling to 0 near depth edges.

    ``1 - min(maxpool3(|lap(D / mean D)|), t) / t`` with the 8-neighbour Laplacian (zero padding, so the
    image border counts as an edge, as in the official code).

    Args:
        depth: (B, 1, H, W) depth (any positive scale).

    Returns:
        (B, 1, H, W) weights in [0, 1].
    """
    kernel = depth.new_full((1, 1, 3, 3), -1.)
    kernel[0, 0, 1, 1] = 8.
    relative = depth / depth.mean((2, 3), keepdim=True)
    edges = F.max_pool2d(F.conv2d(relative, kernel, padding=1).abs(), 3, stride=1, padding=1)
    return 1 - edges.clamp(0, threshold) / threshold


class VGG19Features(nn.Module):
    """The first three blocks of VGG19 (conv1_1 .. pool3) with torchvision's parameter names
    (``features.<index>.weight``), so a torchvision ``vgg19`` state dict loads as it is.

    Returns the outputs of pool1, pool2 and pool3, the features of TiO-Depth's perceptual loss.
    """

    BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256))

    def __init__(self) -> None:
        super().__init__()
        layers: List[nn.Module] = []
        self.block_ends = []
        in_channels = 3
        for block in self.BLOCKS:
            for out_channels in block:
                layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]
                in_channels = out_channels
            layers.append(nn.MaxPool2d(2, 2))
            self.block_ends.append(len(layers))
        self.features = nn.Sequential(*layers)

    def load_torchvision(self, path: str) -> None:
        """Load the ``features.*`` tensors of a local torchvision vgg19 checkpoint (weights_only)."""
        state = torch.load(path, map_location='cpu', weights_only=True)
        state = state.get('state_dict', state)
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise KeyError(f'{path}: not a torchvision vgg19 state dict, missing {missing[:3]}...')
        for key, value in own.items():
            if state[key].shape != value.shape:
                raise ValueError(f'{path}: {key} has shape {tuple(state[key].shape)}, expected '
                                 f'{tuple(value.shape)}')
        self.load_state_dict({k: state[k] for k in own})

    def forward(self, x: Tensor) -> List[Tensor]:
        outs = []
        start = 0
        for end in self.block_ends:
            x = self.features[start:end](x)
            outs.append(x)
            start = end
        return outs
