"""AugUndo (Wu, Yang, Zhang, Shi, Su, Yang, Wong: "AugUndo: Scaling Up Augmentations for Monocular Depth
Completion and Estimation", ECCV 2024).

Idea: augment only what the network sees, then undo the geometric augmentation on its output, so that
the (self-)supervised loss is computed in the original frame with the original images, sparse depth and
intrinsics. Augmentations that would corrupt a photometric reconstruction loss (large rotations,
resizing, crop and pad) become usable, because the loss never sees the augmented images.

Here ``d = T_g^-1(f(T_p(T_g(I)), T_g(z), T_g(K)))`` (the "undo" step of the paper's training loop):
``T_g`` is a chain of per-sample random pixel affines that keep the frame size (:class:`HorizontalFlip`,
:class:`Rotate`, :class:`CropAndPad`, :class:`ResizeAndPad`, :class:`ResizeAndCrop`), composed into one
:class:`Warp` so that each tensor is resampled once; ``T_p`` are photometric jitters of the network's image
only (:class:`Brightness`, :class:`Contrast`, :class:`Saturation`, :class:`Hue`, :class:`Gamma`);
:class:`AugUndo` wraps any depth model that follows the small interface described there.

Pixel convention as :mod:`perception.structures.camera`: the centre of pixel (column i, row j) is (u, v) =
(i, j), an image of width W spans u in [-0.5, W - 0.5], and a pixel transform A acts on (u, v, 1). A map
of another resolution (a decoder's 1/2, 1/4 ... outputs) covers the same field of view, related to the
frame by a resize (``resize_matrix``'s ``u -> s (u + 0.5) - 0.5``).

Differences from the official release (alexklwong/augundo, depth-completion code), on purpose:
the image is resampled bilinearly (the release uses nearest for every input); the intrinsics follow every
geometric transform (the release rescales them for resizes only); rotation keeps the frame size and marks
the corners as invalid (the release rotates with ``expand=True`` and crops back on undo); the undone
prediction comes with a validity mask for pixels whose content came from padding or from outside the frame.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import get_rank
from mmengine.model import BaseModel
from torch import Tensor

from perception.registry import MODELS

# A stage of a warp: its (B, 3, 3) pixel affine (input frame -> output frame) and the (B, 4) window
# (x0, y0, x1, y1) of its input frame that it keeps, in pixel-centre coordinates.
Stage = Tuple[Tensor, Tensor]

_EPS = 1e-6  # slack on window edges, so that float64 round-off never decides validity


def _rand(batch_size: int, generator: Optional[torch.Generator], device: torch.device) -> Tensor:
    """(B,) float64 uniform [0, 1) draws on ``device``, from ``generator`` (drawn on its own device)."""
    if generator is None:
        return torch.rand(batch_size, dtype=torch.float64, device=device)
    return torch.rand(batch_size, dtype=torch.float64, generator=generator,
                      device=generator.device).to(device)


def _randint(high: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """Per-sample integers uniform in [0, high] (inclusive), as float64; ``high`` is (B,) float64."""
    draw = torch.floor(_rand(high.numel(), generator, high.device) * (high + 1))
    return torch.minimum(draw, high)


def _check_range(name: str, value: Sequence[float], low: float, high: float) -> Tuple[float, float]:
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


def _scale_matrix(frame_size: Tuple[int, int], map_size: Tuple[int, int], device: torch.device) -> Tensor:
    """(3, 3) float64: pixels of the full frame -> pixels of a map of ``map_size`` over the same view."""
    sx, sy = map_size[1] / frame_size[1], map_size[0] / frame_size[0]
    return torch.tensor([[sx, 0., 0.5 * sx - 0.5], [0., sy, 0.5 * sy - 0.5], [0., 0., 1.]],
                        dtype=torch.float64, device=device)


def _pixel_centres(height: int, width: int, device: torch.device) -> Tensor:
    """(H * W, 3) float64 homogeneous pixel centres (u, v, 1), row-major."""
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64, device=device),
                          torch.arange(width, dtype=torch.float64, device=device), indexing='ij')
    return torch.stack([u.reshape(-1), v.reshape(-1), torch.ones_like(u).reshape(-1)], dim=-1)


def _sample(x: Tensor, coords: Tensor, mode: str, padding: str) -> Tensor:
    """Read ``x`` (B, C, h, w) at (B, h', w', 2) pixel coordinates (u, v) of ``x``.

    ``grid_sample`` is run in float64: its normalised coordinates in float32 lose up to 1.5e-5 px at a
    width of 768, enough to make a flip or an integer shift inexact. The result has ``x``'s dtype. The
    float64 copies cost memory: undoing an (8, 49, 256, 832) float32 volume (0.33 GB) and its backward
    peaked at 2.8 GB on an H200.
    """
    height, width = x.shape[-2:]
    grid = torch.stack([(2 * coords[..., 0] + 1) / width - 1, (2 * coords[..., 1] + 1) / height - 1], dim=-1)
    out = F.grid_sample(x.to(torch.float64), grid, mode=mode, padding_mode=padding, align_corners=False)
    return out.to(x.dtype)


def erode(valid: Tensor, radius: int) -> Tensor:
    """Binary erosion of a (B, 1, H, W) 0/1 map by a (2 radius + 1)^2 square; outside the map counts as valid,
    so only pixels next to invalid ones (padding, outside the view) are removed."""
    if radius <= 0:
        return valid
    invalid = F.max_pool2d(1 - valid, kernel_size=2 * radius + 1, stride=1, padding=radius)
    return 1 - invalid


class Warp:
    """One sampled geometric augmentation of a batch: per sample, a chain of frame-size-keeping pixel affines.

    Every tensor of a sample goes through the same chain, resampled once with the composed matrix. A pixel of
    the augmented frame is valid when, followed back through the chain, it stays inside each stage's window
    (the crop of crop-and-pad, the frame itself for the others): pixels made of padding, or of content that an
    earlier stage pushed out of the frame, are invalid.

    Args:
        stages: in order of application, each a (B, 3, 3) pixel affine and the (B, 4) window (x0, y0, x1, y1)
            of its input frame that survives, float64, pixel-centre coordinates of the full frame.
        image_size: (H, W) of the frame, the same before and after every stage.

    Tensors given to its methods live on the device the warp was sampled for.
    """

    def __init__(self, stages: Sequence[Stage], image_size: Tuple[int, int]) -> None:
        if not stages:
            raise ValueError('a Warp needs at least one stage')
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.windows = [window for _, window in stages]
        prefix = [torch.eye(3, dtype=torch.float64, device=stages[0][0].device).expand_as(stages[0][0])]
        for matrix, _ in stages:
            prefix.append(matrix @ prefix[-1])
        self.before = prefix[:-1]  # original frame -> input frame of each stage
        self.matrix = prefix[-1]  # (B, 3, 3) original frame -> augmented frame

    @property
    def batch_size(self) -> int:
        return self.matrix.shape[0]

    def _frame_window(self) -> Tensor:
        height, width = self.image_size
        return self.matrix.new_tensor([-0.5, -0.5, width - 0.5, height - 0.5])

    @staticmethod
    def _inside(points: Tensor, window: Tensor) -> Tensor:
        """(B, N) bool: (B, N, 3) points inside (B, 4) or (4,) windows."""
        window = window.view(-1, 1, 4)
        return ((points[..., 0] >= window[..., 0] - _EPS) & (points[..., 0] <= window[..., 2] + _EPS)
                & (points[..., 1] >= window[..., 1] - _EPS) & (points[..., 1] <= window[..., 3] + _EPS))

    def _kept(self, points: Tensor) -> Tensor:
        """(B, N) bool: original-frame points (B, N, 3) that survive every stage."""
        kept = torch.ones(points.shape[:2], dtype=torch.bool, device=points.device)
        for before, window in zip(self.before, self.windows):
            kept &= self._inside(points @ before.transpose(1, 2), window)
        return kept

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[0] != self.batch_size:
            raise ValueError(f'expected a (B={self.batch_size}, C, h, w) tensor, got shape {tuple(x.shape)}')

    def apply(self, x: Tensor, mode: str = 'bilinear', padding: str = 'border') -> Tuple[Tensor, Tensor]:
        """Warp tensors of the original frame into the augmented frame.

        Args:
            x: (B, C, h, w) in the original frame, at the frame's resolution or any other over the same view.
            mode: ``grid_sample`` interpolation, 'bilinear' or 'nearest'.
            padding: ``grid_sample`` padding, 'border' (edge replication, for images) or 'zeros'.

        Returns:
            The (B, C, h, w) warped tensor and its (B, 1, h, w) validity (0/1, ``x``'s dtype).
        """
        self._check(x)
        batch, _, height, width = x.shape
        scale = _scale_matrix(self.image_size, (height, width), x.device)
        dst = _pixel_centres(height, width, x.device) @ torch.linalg.inv(scale).T  # full-frame pixels
        src = dst @ torch.linalg.inv(self.matrix).transpose(1, 2)  # (B, N, 3) original frame
        valid = self._kept(src)
        coords = (src @ scale.T)[..., :2].reshape(batch, height, width, 2)
        out = _sample(x, coords, mode, padding)
        return out, valid.view(batch, 1, height, width).to(x.dtype)

    def reverse(self, y: Tensor, mode: str = 'bilinear') -> Tuple[Tensor, Tensor]:
        """Undo the warp on a prediction made in the augmented frame.

        Args:
            y: (B, C, h, w) in the augmented frame (disparity, depth, logits: any channels), at any resolution
                over the same view. Values are resampled, never rescaled.
            mode: ``grid_sample`` interpolation, 'bilinear' or 'nearest'.

        Returns:
            The (B, C, h, w) prediction in the original frame and its (B, 1, h, w) validity: 0 where the
            original pixel fell outside the augmented frame or onto padding.
        """
        self._check(y)
        batch, _, height, width = y.shape
        scale = _scale_matrix(self.image_size, (height, width), y.device)
        src = (_pixel_centres(height, width, y.device) @ torch.linalg.inv(scale).T).expand(batch, -1, 3)
        dst = src @ self.matrix.transpose(1, 2)  # where each original pixel went
        valid = self._kept(src) & self._inside(dst, self._frame_window())
        coords = (dst @ scale.T)[..., :2].reshape(batch, height, width, 2)
        out = _sample(y, coords, mode, 'border')
        return out, valid.view(batch, 1, height, width).to(y.dtype)

    def apply_sparse(self, depth: Tensor, erode_radius: int = 1) -> Tuple[Tensor, Tensor]:
        """Warp a sparse depth map (0 = no point) nearest-neighbour, so that every value is a measured one.

        The validity is where a point landed, inside the frame's valid region eroded by ``erode_radius``:
        next to padding, nearest sampling may take a point from the seam of the valid region, and the depth
        completion losses must not see it. Depth values are kept, not rescaled.

        Returns:
            The (B, 1, h, w) warped depth (0 where invalid) and its (B, 1, h, w) validity map.
        """
        out, frame_valid = self.apply(depth, mode='nearest', padding='zeros')
        valid = erode(frame_valid, erode_radius) * (out > 0).to(out.dtype)
        return out * valid, valid

    def apply_cam2img(self, cam2img: Tensor) -> Tensor:
        """Intrinsics of the augmented images: ``A @ P`` on the first three rows, for every sample.

        A mirroring chain (odd number of flips: ``det`` of A's linear part < 0) sees the scene mirrored in x,
        as :func:`perception.structures.camera.flip_cam2img`: the matrix is ``A @ P @ diag(-1, 1, 1[, 1])``,
        which keeps a positive focal length. After a rotation the matrix is a general affine camera (not upper
        triangular); projecting a point with it lands where the augmentation moved the point's pixel.

        Args:
            cam2img: (B, 3, 3), (B, 3, 4) or (B, 4, 4) projection matrices of the original frame.

        Returns:
            Matrices of the same shape and dtype.
        """
        if cam2img.dim() != 3 or cam2img.shape[0] != self.batch_size or \
                tuple(cam2img.shape[1:]) not in ((3, 3), (3, 4), (4, 4)):
            raise ValueError(f'expected (B={self.batch_size}, 3|4, 3|4) cam2img, got shape {tuple(cam2img.shape)}')
        matrix = self.matrix
        out = cam2img.to(torch.float64).clone()
        out[:, :3] = matrix @ out[:, :3]
        mirrored = torch.linalg.det(matrix[:, :2, :2]) < 0
        out[:, :, 0] = torch.where(mirrored[:, None], -out[:, :, 0], out[:, :, 0])
        return out.to(cam2img.dtype)


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
        apply = _rand(batch_size, generator, device) < self.prob
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


class HorizontalFlip(GeometricTransform):
    """Mirror the image left-right: ``u -> W - 1 - u`` (exact: pixel centres map onto pixel centres)."""

    def _draw(self, batch_size, image_size, generator, device):
        height, width = image_size
        one = torch.ones(batch_size, dtype=torch.float64, device=device)
        zero = torch.zeros_like(one)
        matrix = _affine(-one, zero, zero, one, (width - 1) * one, zero)
        window = one.new_tensor([-0.5, -0.5, width - 0.5, height - 0.5]).expand(batch_size, 4)
        return matrix, window


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
        angle = (2 * _rand(batch_size, generator, device) - 1) * math.radians(self.max_angle)
        cos, sin = torch.cos(angle), torch.sin(angle)
        cx, cy = (width - 1) / 2, (height - 1) / 2
        # y points down: a counter-clockwise turn on screen is [[cos, sin], [-sin, cos]] about the centre.
        matrix = _affine(cos, sin, -sin, cos, cx - cos * cx - sin * cy, cy + sin * cx - cos * cy)
        window = angle.new_tensor([-0.5, -0.5, width - 0.5, height - 0.5]).expand(batch_size, 4)
        return matrix, window


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
        self.scale = _check_range('CropAndPad scale', scale, 1e-3, 1.0)

    def _draw(self, batch_size, image_size, generator, device):
        height, width = image_size
        lo, hi = self.scale
        crop_h = torch.clamp(torch.floor((lo + (hi - lo) * _rand(batch_size, generator, device)) * height), 1, height)
        crop_w = torch.clamp(torch.floor((lo + (hi - lo) * _rand(batch_size, generator, device)) * width), 1, width)
        y0, x0 = _randint(height - crop_h, generator), _randint(width - crop_w, generator)
        top, left = _randint(height - crop_h, generator), _randint(width - crop_w, generator)
        one, zero = torch.ones_like(crop_h), torch.zeros_like(crop_h)
        matrix = _affine(one, zero, zero, one, left - x0, top - y0)
        window = torch.stack([x0 - 0.5, y0 - 0.5, x0 + crop_w - 0.5, y0 + crop_h - 0.5], dim=-1)
        return matrix, window


class ResizeAndPad(GeometricTransform):
    """Shrink the image by s, uniform in ``scale``, to whole-pixel size and pad it to (H, W) at a random place.

    Args:
        scale: range of the shrink factor, in (0, 1] (0.6-1.0 in the release's VOID scripts).
        prob: per-sample probability (0.5 in the release).
    """

    def __init__(self, scale: Sequence[float] = (0.6, 1.0), prob: float = 0.5) -> None:
        super().__init__(prob)
        self.scale = _check_range('ResizeAndPad scale', scale, 1e-3, 1.0)

    def _draw(self, batch_size, image_size, generator, device):
        height, width = image_size
        lo, hi = self.scale
        s = lo + (hi - lo) * _rand(batch_size, generator, device)
        new_h = torch.clamp(torch.floor(s * height), 1, height)
        new_w = torch.clamp(torch.floor(s * width), 1, width)
        top, left = _randint(height - new_h, generator), _randint(width - new_w, generator)
        sx, sy = new_w / width, new_h / height
        zero = torch.zeros_like(sx)
        # a resize maps pixel edges to pixel edges: u -> sx (u + 0.5) - 0.5, then the shift by the padding
        matrix = _affine(sx, zero, zero, sy, left + 0.5 * sx - 0.5, top + 0.5 * sy - 0.5)
        window = s.new_tensor([-0.5, -0.5, width - 0.5, height - 0.5]).expand(batch_size, 4)
        return matrix, window


class ResizeAndCrop(GeometricTransform):
    """Enlarge the image by s, uniform in ``scale``, to whole-pixel size and cut a random (H, W) window.

    Args:
        scale: range of the enlargement factor, >= 1 (1.0-1.1 in the release's VOID scripts).
        prob: per-sample probability (0.1 in the release).
    """

    def __init__(self, scale: Sequence[float] = (1.0, 1.1), prob: float = 0.1) -> None:
        super().__init__(prob)
        self.scale = _check_range('ResizeAndCrop scale', scale, 1.0, math.inf)

    def _draw(self, batch_size, image_size, generator, device):
        height, width = image_size
        lo, hi = self.scale
        s = lo + (hi - lo) * _rand(batch_size, generator, device)
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
        self.factor = _check_range(f'{type(self).__name__} factor', factor, *self._factor_bounds())
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
        factors = lo + (hi - lo) * _rand(batch_size, generator, device)
        apply = _rand(batch_size, generator, device) < self.prob
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


class Brightness(PhotometricTransform):
    """``I * b`` (release range 0.5-1.5)."""

    def _apply(self, img, factor):
        return img * factor


class Contrast(PhotometricTransform):
    """Blend with the image's mean grey level: ``m + c (I - m)`` (release range 0.5-1.5)."""

    def _apply(self, img, factor):
        mean = (_gray(img) if img.shape[1] == 3 else img).mean(dim=(1, 2, 3), keepdim=True)
        return mean + factor * (img - mean)


class Saturation(PhotometricTransform):
    """Blend with the grey image: ``g + s (I - g)`` (release range 0.5-1.5)."""

    def _apply(self, img, factor):
        gray = _gray(img)
        return gray + factor * (img - gray)


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


class Gamma(PhotometricTransform):
    """``max (I / max) ^ g`` (the release's optional gamma)."""

    @staticmethod
    def _factor_bounds():
        return 1e-3, math.inf

    def _apply(self, img, factor):
        return self.max_value * (img.clamp(min=0) / self.max_value) ** factor


_TRANSFORMS = {cls.__name__: cls for cls in (
    HorizontalFlip, Rotate, CropAndPad, ResizeAndPad, ResizeAndCrop, Brightness, Contrast, Saturation, Hue, Gamma)}


def _build(cfg: Union[dict, GeometricTransform, PhotometricTransform], base: type):
    if isinstance(cfg, dict):
        cfg = dict(cfg)
        name = cfg.pop('type', None)
        if name not in _TRANSFORMS or not issubclass(_TRANSFORMS[name], base):
            options = sorted(k for k, v in _TRANSFORMS.items() if issubclass(v, base))
            raise KeyError(f'unknown {base.__name__} type {name!r}; expected one of {options}')
        cfg = _TRANSFORMS[name](**cfg)
    if not isinstance(cfg, base):
        raise TypeError(f'expected a {base.__name__} or its config dict, got {type(cfg).__name__}')
    return cfg


@MODELS.register_module()
class AugUndo(BaseModel):
    """Train any depth model with AugUndo: augment its inputs, undo the geometry on its outputs, and let its own
    loss run in the original frame.

    The wrapped model provides (beside its ``data_preprocessor``, which the wrapper adopts):

    - ``extract(inputs) -> dict``: the network's forward pass on a dict of batched tensors; the entries named
      in ``undo_keys`` are maps in the input frame, each a (B, C, h, w) tensor or a list of them (one per
      decoder scale, any resolution over the same view: disparity, depth, bin logits ...). Other entries pass
      through untouched, so anything that must see the original frame (a pose network on the original frames,
      a teacher) belongs in the loss.
    - ``loss_by_outputs(outputs, inputs, data_samples, valid) -> dict``: its loss, given outputs in the frame
      of ``inputs``. ``valid`` is None for a plain (un-augmented) call; from the wrapper it holds, for each
      undone entry, the same structure of (B, 1, h, w) 0/1 masks (0 where the pixel came from padding or from
      outside the augmented frame), which the loss should apply. A plain ``loss(inputs, data_samples)`` is
      then ``loss_by_outputs(extract(inputs), inputs, data_samples, None)``.
    - ``forward(inputs, data_samples, mode)`` for 'predict' and 'tensor', which the wrapper passes through
      without augmentation.

    Intrinsics are read from and written to ``inputs[intrinsics_key]`` (a model that reads them from the
    data samples' metainfo sees the original ones). The wrapper's state dict holds the model under ``model.``.

    Args:
        model: the depth model or its config.
        geometric: geometric transforms (or their configs, e.g. ``dict(type='Rotate', max_angle=30)``),
            applied in order with the same parameters to every image, sparse map and intrinsics of a sample.
        photometric: photometric transforms (configs), applied in order to the images in ``image_keys``.
        image_keys: inputs the network sees as images, (B, 3, H, W) or views (B, V, 3, H, W) that get the same
            augmentation: warped bilinearly with edge padding, then jittered.
        sparse_keys: sparse depth inputs (0 = no point): warped nearest-neighbour, 0 outside the eroded valid
            region (a model derives its validity map from ``> 0``).
        intrinsics_key: the (B, 3|4, 3|4) projection matrices in ``inputs``; ignored when absent.
        undo_keys: entries of ``extract``'s outputs to bring back to the original frame.
        undo_mode: interpolation of the undo, 'bilinear' or 'nearest' (the release's).
        sparse_erode: erosion radius, in pixels, of the sparse maps' valid region.
        sparse_drop: (min, max) fraction of the sparse points removed per sample (the release: 0.6-0.7), or None.
        pixel_mean, pixel_std: per-channel normalisation of the images; the photometric transforms work on
            ``img * std + mean`` and the result is normalised again. None: images are already in their range.
        seed: seeds the wrapper's own random generator (plus the process rank) for reproducible draws;
            None uses torch's global generator (seeded by the runner).
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 model: Union[dict, nn.Module],
                 geometric: Sequence[Union[dict, GeometricTransform]] = (),
                 photometric: Sequence[Union[dict, PhotometricTransform]] = (),
                 image_keys: Sequence[str] = ('img',),
                 sparse_keys: Sequence[str] = (),
                 intrinsics_key: Optional[str] = 'cam2img',
                 undo_keys: Sequence[str] = ('disp',),
                 undo_mode: str = 'bilinear',
                 sparse_erode: int = 1,
                 sparse_drop: Optional[Sequence[float]] = None,
                 pixel_mean: Optional[Sequence[float]] = None,
                 pixel_std: Optional[Sequence[float]] = None,
                 seed: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.model = MODELS.build(model) if isinstance(model, dict) else model
        missing = [name for name in ('extract', 'loss_by_outputs') if not callable(getattr(self.model, name, None))]
        if missing:
            raise TypeError(f'AugUndo needs a depth model with {missing} (see the AugUndo docstring); '
                            f'{type(self.model).__name__} has none')
        if isinstance(getattr(self.model, 'data_preprocessor', None), nn.Module):
            self.data_preprocessor = self.model.data_preprocessor
        self.geometric = GeometricChain([_build(t, GeometricTransform) for t in geometric])
        self.photometric = [_build(t, PhotometricTransform) for t in photometric]
        if not image_keys:
            raise ValueError('image_keys must name at least one input')
        if undo_mode not in ('bilinear', 'nearest'):
            raise ValueError(f"undo_mode must be 'bilinear' or 'nearest', got {undo_mode!r}")
        if (pixel_mean is None) != (pixel_std is None):
            raise ValueError('give both pixel_mean and pixel_std, or neither')
        self.image_keys = tuple(image_keys)
        self.sparse_keys = tuple(sparse_keys)
        self.intrinsics_key = intrinsics_key
        self.undo_keys = tuple(undo_keys)
        self.undo_mode = undo_mode
        self.sparse_erode = int(sparse_erode)
        self.sparse_drop = None if sparse_drop is None else _check_range('sparse_drop', sparse_drop, 0.0, 1.0)
        self.pixel_mean = None if pixel_mean is None else tuple(float(v) for v in pixel_mean)
        self.pixel_std = None if pixel_std is None else tuple(float(v) for v in pixel_std)
        self.seed = seed
        self._generator: Optional[torch.Generator] = None

    def generator(self, device: torch.device) -> Optional[torch.Generator]:
        """The wrapper's generator on ``device`` (None without a seed); made afresh when the device changes."""
        if self.seed is None:
            return None
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed + get_rank())
        return self._generator

    def _jitter(self, img: Tensor, factors: List[Tensor]) -> Tensor:
        if img.dim() == 5:  # the views of a sample share its jitter
            views = img.shape[1]
            flat = self._jitter(img.flatten(0, 1), [f.repeat_interleave(views, 0) for f in factors])
            return flat.unflatten(0, (-1, views))
        if self.pixel_mean is not None:
            mean = img.new_tensor(self.pixel_mean).view(1, -1, 1, 1)
            std = img.new_tensor(self.pixel_std).view(1, -1, 1, 1)
            img = img * std + mean
        for transform, factor in zip(self.photometric, factors):
            img = transform.apply(img, factor)
        if self.pixel_mean is not None:
            img = (img - mean) / std
        return img

    def augment(self, inputs: Dict[str, Tensor]) -> Tuple[Dict[str, Tensor], Optional[Warp]]:
        """The network's inputs for one training step and the warp that made them (None without geometry).

        Args:
            inputs: batched tensors in the original frame; entries not named by the wrapper are passed on.
        """
        first = inputs[self.image_keys[0]]
        batch, device = first.shape[0], first.device
        generator = self.generator(device)
        warp = None
        if self.geometric.transforms:
            warp = self.geometric.sample(batch, tuple(first.shape[-2:]), generator, device)
        factors = [t.sample(batch, generator, device) for t in self.photometric]
        augmented = dict(inputs)
        for key in self.image_keys:
            img = inputs[key]
            if warp is not None:
                # (B, V, 3, H, W) views of a sample (a stereo pair) move together
                flat, _ = warp.apply(img.flatten(1, 2) if img.dim() == 5 else img, 'bilinear', 'border')
                img = flat.view_as(img)
            augmented[key] = self._jitter(img, factors) if self.photometric else img
        for key in self.sparse_keys:
            depth = inputs[key]
            if warp is not None:
                depth, _ = warp.apply_sparse(depth, self.sparse_erode)
            if self.sparse_drop is not None:
                lo, hi = self.sparse_drop
                fraction = (lo + (hi - lo) * _rand(batch, generator, device)).view(-1, 1, 1, 1)
                draws = torch.rand(depth.shape, dtype=torch.float64, generator=generator,
                                   device=device if generator is None else generator.device).to(device)
                depth = depth * (draws >= fraction).to(depth.dtype)
            augmented[key] = depth
        if warp is not None and self.intrinsics_key is not None and self.intrinsics_key in inputs:
            augmented[self.intrinsics_key] = warp.apply_cam2img(inputs[self.intrinsics_key])
        return augmented, warp

    def undo(self, outputs: dict, warp: Warp) -> Tuple[dict, Dict[str, Union[Tensor, List[Tensor]]]]:
        """Bring the ``undo_keys`` entries of ``outputs`` back to the original frame, with their validity."""
        outputs, valid = dict(outputs), {}
        for key in self.undo_keys:
            if key not in outputs:
                raise KeyError(f'the model outputs have no {key!r} to undo (they have {sorted(outputs)})')
            value = outputs[key]
            if isinstance(value, Tensor):
                outputs[key], valid[key] = warp.reverse(value, self.undo_mode)
            else:
                pairs = [warp.reverse(v, self.undo_mode) for v in value]
                outputs[key], valid[key] = [p[0] for p in pairs], [p[1] for p in pairs]
        return outputs, valid

    def loss(self, inputs: Dict[str, Tensor], data_samples=None) -> Dict[str, Tensor]:
        """Augment, run the model, undo, and return the model's loss in the original frame."""
        augmented, warp = self.augment(inputs)
        outputs = self.model.extract(augmented)
        valid = None
        if warp is not None:
            outputs, valid = self.undo(outputs, warp)
        return self.model.loss_by_outputs(outputs, inputs, data_samples, valid)

    def forward(self, inputs: Dict[str, Tensor], data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode in ('predict', 'tensor'):
            return self.model(inputs, data_samples, mode=mode)
        raise RuntimeError(f'invalid mode {mode!r}: expected loss, predict or tensor')
