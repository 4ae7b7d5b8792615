"""Batch augmentations of AugUndo: per-sample random geometric transforms that keep the frame size (a
:class:`~perception.models.depth.batch_warp.Warp` applies and undoes them) and photometric jitters of the
network's image. They are registered in ``BATCH_AUGMENTS`` and built from configs such as
``dict(type='Rotate', max_angle=30)``.

Geometric: :class:`HorizontalFlip`, :class:`Rotate`, :class:`CropAndPad`, :class:`ResizeAndPad`,
:class:`ResizeAndCrop` (chained by :class:`GeometricChain`, resampled once). Photometric:
:class:`Brightness`, :class:`Contrast`, :class:`Saturation`, :class:`Hue`, :class:`Gamma`. The defaults and
ranges quoted are the official release's (alexklwong/augundo).
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from perception.registry import BATCH_AUGMENTS
from .batch_warp import Stage, Warp


def rand_per_sample(batch_size: int, generator: Optional[torch.Generator], device: torch.device) -> Tensor:
    """(B,) float64 uniform [0, 1) draws on ``device``, from ``generator`` (drawn on its own device)."""
    if generator is None:
        return torch.rand(batch_size, dtype=torch.float64, device=device)
    return torch.rand(batch_size, dtype=torch.float64, generator=generator,
                      device=generator.device).to(device)


def _randint(high: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """Per-sample integers uniform in [0, high] (inclusive), as float64; ``high`` is (B,) float64."""
    draw = torch.floor(rand_per_sample(high.numel(), generator, high.device) * (high + 1))
    return torch.minimum(draw, high)


def check_range(name: str, value: Sequence[float], low: float, high: float) -> Tuple[float, float]:
    """``value`` as a (min, max) pair of floats with ``low <= min <= max <= high``; ValueError naming ``name``."""
    lo, hi = (float(v) for v in value)
    if not low <= lo <= hi <= high:
        raise ValueError(f'{name} must satisfy {low} <= min <= max <= {high}, got {tuple(value)}')
    return lo, hi


def _check_prob(prob: float) -> float:
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f'prob must be in [0, 1], got {prob}')
    return float(prob)


def _affine(a: Tensor, b: Tensor, c: Tensor, d: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
    """(B, 3, 3) matrices [[a, b, tx], [c, d, ty], [0, 0, 1]] from (B,) entries."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, tx, c, d, ty, zero, zero, one], dim=-1).view(-1, 3, 3)


class GeometricTransform:
    """A random pixel affine per sample that keeps the frame size; the base of the geometric augmentations.

    ``forward`` draws new parameters (one set per sample) and remembers them for ``reverse``. Several tensors
    of a sample get the same parameters through the :class:`Warp` returned by :meth:`sample`.

    Args:
        prob: probability, per sample, of applying the transform (identity otherwise).
    """

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = _check_prob(prob)
        self.warp: Optional[Warp] = None

    def _draw(self, batch_size: int, image_size: Tuple[int, int], generator: Optional[torch.Generator],
              device: torch.device) -> Stage:
        """The (B, 3, 3) matrices and (B, 4) kept windows of the transform applied to every sample."""
        raise NotImplementedError

    def sample_stages(self, batch_size: int, image_size: Tuple[int, int],
                      generator: Optional[torch.Generator] = None,
                      device: Union[str, torch.device] = 'cpu') -> List[Stage]:
        device = torch.device(device)
        height, width = image_size
        matrix, window = self._draw(batch_size, image_size, generator, device)
        apply = rand_per_sample(batch_size, generator, device) < self.prob
        full = matrix.new_tensor([-0.5, -0.5, width - 0.5, height - 0.5]).expand_as(window)
        matrix = torch.where(apply[:, None, None], matrix, torch.eye(3, dtype=matrix.dtype, device=device))
        window = torch.where(apply[:, None], window, full)
        return [(matrix, window)]

    def sample(self, batch_size: int, image_size: Tuple[int, int], generator: Optional[torch.Generator] = None,
               device: Union[str, torch.device] = 'cpu') -> Warp:
        """Draw parameters for a batch of ``image_size`` (H, W) frames; the warp applies them to any tensor."""
        return Warp(self.sample_stages(batch_size, image_size, generator, device), image_size)

    def forward(self, img: Tensor, cam2img: Optional[Tensor] = None,
                generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        """Augment a (B, C, H, W) batch (bilinear, edge padding) and its intrinsics with new parameters.

        Returns:
            The augmented images, the new intrinsics (None without ``cam2img``), the (B, 1, H, W) validity.
        """
        self.warp = self.sample(img.shape[0], tuple(img.shape[-2:]), generator, img.device)
        out, valid = self.warp.apply(img)
        return out, None if cam2img is None else self.warp.apply_cam2img(cam2img), valid

    def reverse(self, pred: Tensor, mode: str = 'bilinear') -> Tuple[Tensor, Tensor]:
        """Bring a (B, C, h, w) prediction on the last ``forward``'s output back to the original frame."""
        if self.warp is None:
            raise RuntimeError(f'{type(self).__name__}.reverse() called before forward()')
        return self.warp.reverse(pred, mode)

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items() if k != 'warp')
        return f'{type(self).__name__}({args})'


@BATCH_AUGMENTS.register_module()
class HorizontalFlip(GeometricTransform):
    """Mirror the image left-right: ``u -> W - 1 - u`` (exact: pixel centres map onto pixel centres)."""

    def _draw(self, batch_size, image_size, generator, device):
        height, width = image_size
        one = torch.ones(batch_size, dtype=torch.float64, device=device)
        zero = torch.zeros_like(one)
        matrix = _affine(-one, zero, zero, one, (width - 1) * one, zero)
        window = one.new_tensor([-0.5, -0.5, width - 0.5, height - 0.5]).expand(batch_size, 4)
        return matrix, window


@BATCH_AUGMENTS.register_module()
class Rotate(GeometricTransform):
    """Rotate the image about its centre by an angle uniform in [-max_angle, max_angle] degrees.

    Positive angles turn the content counter-clockwise on screen. The frame size is kept; the corners that
    come from outside the image are edge-padded for the network and invalid for the loss.

    Args:
        max_angle: largest rotation in degrees (the release uses 25 for VOID, 30 for KITTI).
        prob: per-sample probability (0.05 in the release).
    """

    def __init__(self, max_angle: float = 25.0, prob: float = 0.05) -> None:
        super().__init__(prob)
        if not 0.0 <= max_angle <= 180.0:
            raise ValueError(f'max_angle must be in [0, 180] degrees, got {max_angle}')
        self.max_angle = float(max_angle)

    def _draw(self, batch_size, image_size, generator, device):
        height, width = image_size
        angle = (2 * rand_per_sample(batch_size, generator, device) - 1) * math.radians(self.max_angle)
        cos, sin = torch.cos(angle), torch.sin(angle)
        cx, cy = (width - 1) / 2, (height - 1) / 2
        # y points down: a counter-clockwise turn on screen is [[cos, sin], [-sin, cos]] about the centre.
        matrix = _affine(cos, sin, -sin, cos, cx - cos * cx - sin * cy, cy + sin * cx - cos * cy)
        window = angle.new_tensor([-0.5, -0.5, width - 0.5, height - 0.5]).expand(batch_size, 4)
        return matrix, window


@BATCH_AUGMENTS.register_module()
class CropAndPad(GeometricTransform):
    """Cut a random window of (s_h H, s_w W) pixels and pad it back to (H, W) at a random place.

    s_h and s_w are drawn independently, uniform in ``scale``; window size, position and padding are whole
    pixels, so the content moves by an integer shift and is copied exactly.

    Args:
        scale: range of the window's side as a fraction of the frame's (0.9-1.0 in the release).
        prob: per-sample probability (0.5 in the release).
    """

    def __init__(self, scale: Sequence[float] = (0.9, 1.0), prob: float = 0.5) -> None:
        super().__init__(prob)
        self.scale = check_range('CropAndPad scale', scale, 1e-3, 1.0)

    def _draw(self, batch_size, image_size, generator, device):
        height, width = image_size
        lo, hi = self.scale
        scale_h = lo + (hi - lo) * rand_per_sample(batch_size, generator, device)
        crop_h = torch.clamp(torch.floor(scale_h * height), 1, height)
        scale_w = lo + (hi - lo) * rand_per_sample(batch_size, generator, device)
        crop_w = torch.clamp(torch.floor(scale_w * width), 1, width)
        y0, x0 = _randint(height - crop_h, generator), _randint(width - crop_w, generator)
        top, left = _randint(height - crop_h, generator), _randint(width - crop_w, generator)
        one, zero = torch.ones_like(crop_h), torch.zeros_like(crop_h)
        matrix = _affine(one, zero, zero, one, left - x0, top - y0)
        window = torch.stack([x0 - 0.5, y0 - 0.5, x0 + crop_w - 0.5, y0 + crop_h - 0.5], dim=-1)
        return matrix, window


@BATCH_AUGMENTS.register_module()
class ResizeAndPad(GeometricTransform):
    """Shrink the image by s, uniform in ``scale``, to whole-pixel size and pad it to (H, W) at a random place.

    Args:
        scale: range of the shrink factor, in (0, 1] (0.6-1.0 in the release's VOID scripts).
        prob: per-sample probability (0.5 in the release).
    """

    def __init__(self, scale: Sequence[float] = (0.6, 1.0), prob: float = 0.5) -> None:
        super().__init__(prob)
        self.scale = check_range('ResizeAndPad scale', scale, 1e-3, 1.0)

    def _draw(self, batch_size, image_size, generator, device):
        height, width = image_size
        lo, hi = self.scale
        s = lo + (hi - lo) * rand_per_sample(batch_size, generator, device)
        new_h = torch.clamp(torch.floor(s * height), 1, height)
        new_w = torch.clamp(torch.floor(s * width), 1, width)
        top, left = _randint(height - new_h, generator), _randint(width - new_w, generator)
        sx, sy = new_w / width, new_h / height
        zero = torch.zeros_like(sx)
        # a resize maps pixel edges to pixel edges: u -> sx (u + 0.5) - 0.5, then the shift by the padding
        matrix = _affine(sx, zero, zero, sy, left + 0.5 * sx - 0.5, top + 0.5 * sy - 0.5)
        window = s.new_tensor([-0.5, -0.5, width - 0.5, height - 0.5]).expand(batch_size, 4)
        return matrix, window


@BATCH_AUGMENTS.register_module()
class ResizeAndCrop(GeometricTransform):
    """Enlarge the image by s, uniform in ``scale``, to whole-pixel size and cut a random (H, W) window.

    Args:
        scale: range of the enlargement factor, >= 1 (1.0-1.1 in the release's VOID scripts).
        prob: per-sample probability (0.1 in the release).
    """

    def __init__(self, scale: Sequence[float] = (1.0, 1.1), prob: float = 0.1) -> None:
        super().__init__(prob)
        self.scale = check_range('ResizeAndCrop scale', scale, 1.0, math.inf)

    def _draw(self, batch_size, image_size, generator, device):
        height, width = image_size
        lo, hi = self.scale
        s = lo + (hi - lo) * rand_per_sample(batch_size, generator, device)
        new_h = torch.clamp(torch.floor(s * height), min=height)
        new_w = torch.clamp(torch.floor(s * width), min=width)
        y0, x0 = _randint(new_h - height, generator), _randint(new_w - width, generator)
        sx, sy = new_w / width, new_h / height
        zero = torch.zeros_like(sx)
        matrix = _affine(sx, zero, zero, sy, 0.5 * sx - 0.5 - x0, 0.5 * sy - 0.5 - y0)
        window = s.new_tensor([-0.5, -0.5, width - 0.5, height - 0.5]).expand(batch_size, 4)
        return matrix, window


class GeometricChain(GeometricTransform):
    """Several geometric transforms applied in order, resampled once. The release's order is flip,
    resize-and-crop, crop-and-pad, resize-and-pad, rotation."""

    def __init__(self, transforms: Sequence[GeometricTransform]) -> None:
        super().__init__(prob=1.0)
        self.transforms = list(transforms)

    def sample_stages(self, batch_size, image_size, generator=None, device='cpu'):
        return [stage for t in self.transforms
                for stage in t.sample_stages(batch_size, image_size, generator, device)]


class PhotometricTransform:
    """A random per-sample intensity change of the network's image; the base of the photometric augmentations.

    Works on images in [0, ``max_value``] (the result is clamped to it).

    Args:
        factor: range of the factor, drawn uniformly per sample.
        prob: probability, per sample, of applying the change (0.5 in the release).
        max_value: white level of the images (1.0, or 255.0 for raw pixels).
    """
    identity = 1.0

    def __init__(self, factor: Sequence[float], prob: float = 0.5, max_value: float = 1.0) -> None:
        self.factor = check_range(f'{type(self).__name__} factor', factor, *self._factor_bounds())
        self.prob = _check_prob(prob)
        self.max_value = float(max_value)

    @staticmethod
    def _factor_bounds() -> Tuple[float, float]:
        return 0.0, math.inf

    def sample(self, batch_size: int, generator: Optional[torch.Generator] = None,
               device: Union[str, torch.device] = 'cpu') -> Tensor:
        """(B,) float64 factors, ``identity`` where the change is not applied."""
        device = torch.device(device)
        lo, hi = self.factor
        factors = lo + (hi - lo) * rand_per_sample(batch_size, generator, device)
        apply = rand_per_sample(batch_size, generator, device) < self.prob
        return torch.where(apply, factors, torch.full_like(factors, self.identity))

    def _apply(self, img: Tensor, factor: Tensor) -> Tensor:
        raise NotImplementedError

    def apply(self, img: Tensor, factors: Tensor) -> Tensor:
        """Change a (B, C, H, W) batch with (B,) ``factors`` from :meth:`sample`."""
        factor = factors.to(device=img.device, dtype=img.dtype).view(-1, 1, 1, 1)
        return self._apply(img, factor).clamp(0.0, self.max_value)

    def forward(self, img: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        return self.apply(img, self.sample(img.shape[0], generator, img.device))

    def __repr__(self) -> str:
        return f'{type(self).__name__}(factor={self.factor}, prob={self.prob}, max_value={self.max_value})'


def _check_rgb(img: Tensor) -> None:
    if img.dim() != 4 or img.shape[1] != 3:
        raise ValueError(f'expected RGB images (B, 3, H, W), got shape {tuple(img.shape)}')


def _gray(img: Tensor) -> Tensor:
    _check_rgb(img)
    weights = img.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (img * weights).sum(dim=1, keepdim=True)


@BATCH_AUGMENTS.register_module()
class Brightness(PhotometricTransform):
    """``I * b`` (release range 0.5-1.5)."""

    def _apply(self, img, factor):
        return img * factor


@BATCH_AUGMENTS.register_module()
class Contrast(PhotometricTransform):
    """Blend with the image's mean grey level: ``m + c (I - m)`` (release range 0.5-1.5)."""

    def _apply(self, img, factor):
        mean = (_gray(img) if img.shape[1] == 3 else img).mean(dim=(1, 2, 3), keepdim=True)
        return mean + factor * (img - mean)


@BATCH_AUGMENTS.register_module()
class Saturation(PhotometricTransform):
    """Blend with the grey image: ``g + s (I - g)`` (release range 0.5-1.5)."""

    def _apply(self, img, factor):
        gray = _gray(img)
        return gray + factor * (img - gray)


@BATCH_AUGMENTS.register_module()
class Hue(PhotometricTransform):
    """Turn the hue by h of a full turn (release range -0.1-0.1), as a rotation of the chroma plane of YIQ:
    linear and batched, close to torchvision's HSV shift for moderate h."""
    identity = 0.0
    _rgb_to_yiq = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))

    @staticmethod
    def _factor_bounds():
        return -0.5, 0.5

    def _apply(self, img, factor):
        _check_rgb(img)
        to_yiq = img.new_tensor(self._rgb_to_yiq)
        angle = 2 * math.pi * factor.view(-1)
        cos, sin = torch.cos(angle), torch.sin(angle)
        one, zero = torch.ones_like(cos), torch.zeros_like(cos)
        rotation = torch.stack([one, zero, zero, zero, cos, -sin, zero, sin, cos], dim=-1).view(-1, 3, 3)
        matrix = torch.linalg.inv(to_yiq) @ rotation @ to_yiq  # (B, 3, 3)
        return torch.einsum('bij,bjhw->bihw', matrix, img)


@BATCH_AUGMENTS.register_module()
class Gamma(PhotometricTransform):
    """``max (I / max) ^ g`` (the release's optional gamma)."""

    @staticmethod
    def _factor_bounds():
        return 1e-3, math.inf

    def _apply(self, img, factor):
        return self.max_value * (img.clamp(min=0) / self.max_value) ** factor
