"""The batch warp of AugUndo: per-sample pixel affines that keep the frame size, applied to a batch in one
resampling and undone on the network's output.

Pixel convention as :mod:`perception.structures.camera`: the centre of pixel (column i, row j) is (u, v) =
(i, j), an image of width W spans u in [-0.5, W - 0.5], and a pixel transform A acts on (u, v, 1). A map
of another resolution (a decoder's 1/2, 1/4 ... outputs) covers the same field of view, related to the
frame by a resize (``resize_matrix``'s ``u -> s (u + 0.5) - 0.5``).
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# A stage of a warp: its (B, 3, 3) pixel affine (input frame -> output frame) and the (B, 4) window
# (x0, y0, x1, y1) of its input frame that it keeps, in pixel-centre coordinates.
Stage = Tuple[Tensor, Tensor]

_EPS = 1e-6  # slack on window edges, so that float64 round-off never decides validity


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
