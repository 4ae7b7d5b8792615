"""Pinhole camera geometry: projection with a ``cam2img`` matrix and how it changes under image augmentation.

Pixel convention (KITTI labels, KITTI calibration, OpenCV's ``warpAffine``): the centre of pixel (column i, row j)
is at (u, v) = (i, j), so an image of width W holds pixel centres u = 0 ... W - 1 and KITTI's 2D boxes reach
u = W - 1 at most. Image operations are 3x3 matrices acting on homogeneous pixel coordinates (u, v, 1). A projection
``cam2img`` (3x3 intrinsics, 3x4 or 4x4 KITTI ``P``) maps a camera point X (metres) to ``s * (u, v, 1) = P @ (X, 1)``;
the pixel transform A turns it into ``A @ P``, so projecting with the new matrix equals transforming the projected
pixels. Horizontal flip also mirrors the scene (x -> -x), which conjugates the matrix by ``diag(-1, 1, 1, 1)``.

Every function takes numpy arrays or torch tensors and returns the same kind, in the input's dtype.
"""
from typing import Sequence, Tuple, TypeVar, Union

import numpy as np
import torch

from perception.fileio.errors import InvalidInputError

Array = TypeVar('Array', np.ndarray, torch.Tensor)


def _check_cam2img(cam2img: Array) -> None:
    if tuple(cam2img.shape[-2:]) not in ((3, 3), (3, 4), (4, 4)):
        raise ValueError(f'cam2img must be 3x3, 3x4 or 4x4, got shape {tuple(cam2img.shape)}')


def cam2img_to_4x4(cam2img: Array) -> Array:
    """Pad a 3x3 or 3x4 projection to 4x4 (last row ``[0, 0, 0, 1]``); a 4x4 one is returned as a copy.

    Args:
        cam2img: (3, 3), (3, 4) or (4, 4) projection matrix.

    Returns:
        (4, 4) matrix of the same kind and dtype.
    """
    _check_cam2img(cam2img)
    if isinstance(cam2img, torch.Tensor):
        out = torch.eye(4, dtype=cam2img.dtype, device=cam2img.device)
    else:
        out = np.eye(4, dtype=cam2img.dtype)
    rows, cols = cam2img.shape[-2:]
    out[:rows, :cols] = cam2img
    return out


def project_points(points: Array, cam2img: Array, with_depth: bool = False) -> Array:
    """Project camera-frame points to pixels.

    Args:
        points: (..., 3) points in the camera frame, metres.
        cam2img: (3, 3), (3, 4) or (4, 4) projection matrix.
        with_depth: also return the projective depth, the third homogeneous coordinate (for a KITTI ``P2`` this is
            z plus the tiny ``P2[2, 3]`` offset, as in mmdet3d's ``depth`` of the info files).

    Returns:
        (..., 2) pixel coordinates (u, v), or (..., 3) (u, v, depth) with ``with_depth``. Points with depth <= 0
        (behind the camera) give meaningless pixels; callers filter them.
    """
    _check_cam2img(cam2img)
    uvw = points @ cam2img[:3, :3].swapaxes(0, 1)
    if cam2img.shape[-1] == 4:
        uvw = uvw + cam2img[:3, 3]
    uv = uvw[..., :2] / uvw[..., 2:3]
    if not with_depth:
        return uv
    if isinstance(uv, torch.Tensor):
        return torch.cat([uv, uvw[..., 2:3]], dim=-1)
    return np.concatenate([uv, uvw[..., 2:3]], axis=-1)


def unproject_points(uv_depth: Array, cam2img: Array) -> Array:
    """Lift pixels with projective depth back to camera-frame points: the inverse of ``project_points(...,
    with_depth=True)``.

    Args:
        uv_depth: (..., 3) pixel coordinates and projective depth (metres).
        cam2img: (3, 3), (3, 4) or (4, 4) projection matrix.

    Returns:
        (..., 3) camera-frame points, metres.

    Raises:
        InvalidInputError: the intrinsics are singular (a zero focal length): not a camera matrix.
    """
    _check_cam2img(cam2img)
    depth = uv_depth[..., 2:3]
    try:
        if isinstance(uv_depth, torch.Tensor):
            uvw = torch.cat([uv_depth[..., :2] * depth, depth], dim=-1)
            inv = torch.linalg.inv(cam2img[:3, :3])
        else:
            uvw = np.concatenate([uv_depth[..., :2] * depth, depth], axis=-1)
            inv = np.linalg.inv(cam2img[:3, :3])
    except (np.linalg.LinAlgError, torch.linalg.LinAlgError):
        raise InvalidInputError(
            f'cam2img is not a camera matrix: its 3x3 intrinsics {cam2img[:3, :3].tolist()} are singular (focal '
            f'lengths fx={float(cam2img[0, 0])}, fy={float(cam2img[1, 1])} must be non-zero)') from None
    if cam2img.shape[-1] == 4:
        uvw = uvw - cam2img[:3, 3]
    return uvw @ inv.swapaxes(0, 1)


def projected_boxes_2d(corners: Array, cam2img: Array) -> Array:
    """2D boxes around the projected corners of 3D boxes (not clipped to any image).

    Args:
        corners: (N, 8, 3) box corners in the camera frame, metres (``CameraInstance3DBoxes.corners``);
            all in front of the camera.
        cam2img: (3, 3), (3, 4) or (4, 4) projection matrix.

    Returns:
        (N, 4) boxes ``x1, y1, x2, y2``, pixels.
    """
    uv = project_points(corners, cam2img)
    if isinstance(uv, torch.Tensor):
        return torch.cat([uv.amin(dim=-2), uv.amax(dim=-2)], dim=-1)
    return np.concatenate([uv.min(axis=-2), uv.max(axis=-2)], axis=-1)


def transform_points_2d(points: Array, matrix: Array) -> Array:
    """Apply a 3x3 pixel transform (affine) to (..., 2) pixel coordinates."""
    return points @ matrix[:2, :2].swapaxes(0, 1) + matrix[:2, 2]


def transform_boxes_2d(boxes: Array, matrix: Array) -> Array:
    """Transform (N, 4) ``x1, y1, x2, y2`` boxes by a 3x3 pixel affine: the box around the 4 transformed corners.

    Exact (corners to corners) for flips, scales and translations, which is all the mono3D pipeline uses.
    """
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    stack = torch.stack if isinstance(boxes, torch.Tensor) else np.stack
    corners = stack([stack([x1, y1], -1), stack([x2, y1], -1), stack([x1, y2], -1), stack([x2, y2], -1)], -2)
    corners = transform_points_2d(corners, matrix)
    if isinstance(boxes, torch.Tensor):
        return torch.cat([corners.amin(dim=-2), corners.amax(dim=-2)], dim=-1)
    return np.concatenate([corners.min(axis=-2), corners.max(axis=-2)], axis=-1)


def transform_cam2img(cam2img: Array, matrix: Array) -> Array:
    """The projection after the pixel transform ``matrix``: ``matrix @ cam2img`` on the first 3 rows.

    Args:
        cam2img: (3, 3), (3, 4) or (4, 4) projection matrix.
        matrix: (3, 3) pixel transform.

    Returns:
        A matrix of the same shape as ``cam2img``; the last row of a 4x4 one is kept.
    """
    _check_cam2img(cam2img)
    out = cam2img.clone() if isinstance(cam2img, torch.Tensor) else cam2img.copy()
    out[:3] = matrix @ cam2img[:3]
    return out


def flip_cam2img(cam2img: Array, width: int) -> Array:
    """The projection of the horizontally flipped image of the mirrored scene (camera-frame x -> -x).

    ``P' = F @ P @ diag(-1, 1, 1, 1)`` with F the pixel flip ``u -> width - 1 - u``. For a KITTI ``P2`` this gives
    ``cx' = width - 1 - cx`` and also changes the baseline term ``P[0, 3]`` (``t0' = (width - 1) * t2 - t0``), which
    a flip of ``cx`` alone gets wrong by ``2 * t0 / z`` pixels (9 px at 10 m for KITTI's camera 2).

    Args:
        cam2img: (3, 3), (3, 4) or (4, 4) projection matrix.
        width: image width in pixels.

    Returns:
        A matrix of the same shape as ``cam2img``.
    """
    out = transform_cam2img(cam2img, flip_matrix(width, like=cam2img))
    out[:, 0] = -out[:, 0]
    return out


def _like(values, like: Union[np.ndarray, torch.Tensor, None]):
    if isinstance(like, torch.Tensor):
        return torch.as_tensor(values, dtype=like.dtype, device=like.device)
    return np.asarray(values, dtype=np.float64 if like is None else like.dtype)


def _from_area_convention(matrix: np.ndarray) -> np.ndarray:
    """Re-express a pixel transform written for edge coordinates (pixel i spans [i, i + 1), the convention of image
    sizes, ``cv2.resize`` and MonoDETR's crop) in the pixel-centre convention of this module."""
    to_area = np.array([[1., 0., 0.5], [0., 1., 0.5], [0., 0., 1.]])
    from_area = np.array([[1., 0., -0.5], [0., 1., -0.5], [0., 0., 1.]])
    return from_area @ matrix @ to_area


def flip_matrix(width: int, like=None):
    """Pixel transform of a horizontal image flip: ``u -> width - 1 - u``. Returns (3, 3), float64 or like ``like``."""
    return _like([[-1., 0., width - 1.], [0., 1., 0.], [0., 0., 1.]], like)


def resize_matrix(scale_x: float, scale_y: float, like=None):
    """Pixel transform of an image resize by (scale_x, scale_y) = (new W / old W, new H / old H), as done by
    ``cv2.resize``/``mmcv.imresize``: ``u -> scale_x * (u + 0.5) - 0.5``. Returns (3, 3)."""
    area = np.diag([scale_x, scale_y, 1.])
    return _like(_from_area_convention(area), like)


def crop_scale_matrix(center: Sequence[float], crop_size: Sequence[float], out_size: Tuple[int, int], like=None):
    """Pixel transform of MonoDETR's crop-and-scale (its ``get_affine_transform`` with no rotation).

    A window of ``crop_size`` (w, h) centred at ``center`` (in edge coordinates, so the image centre is (W/2, H/2))
    is scaled by ``out_size[0] / crop_size[0]`` in both directions (aspect ratio kept; the crop height only sets
    the window and is not used for scaling, as in MonoDETR) and centred in an output of ``out_size`` (W', H').

    Returns:
        (3, 3) pixel transform, float64 or like ``like``.
    """
    scale = out_size[0] / crop_size[0]
    area = np.array([[scale, 0., out_size[0] / 2 - scale * center[0]],
                     [0., scale, out_size[1] / 2 - scale * center[1]],
                     [0., 0., 1.]])
    return _like(_from_area_convention(area), like)


def stereo_direction(meta: dict) -> float:
    """+1.0 when the stereo partner camera is to the right of the view, -1.0 when to its left.

    Read from ``meta['stereo_direction']``, or from ``meta['side']`` ('l' / 'r', KITTI raw: the partner of
    a left view is to its right) with a horizontal ``flip`` of the pair (``flip`` / ``flip_direction``)
    swapping it. Raises a KeyError naming the keys present when neither is given.
    """
    if 'stereo_direction' in meta:
        return float(meta['stereo_direction'])
    if meta.get('side') not in ('l', 'r'):
        raise KeyError(f'the stereo direction needs stereo_direction or side (l/r), got {sorted(meta)}')
    direction = 1. if meta['side'] == 'l' else -1.
    if meta.get('flip', False) and meta.get('flip_direction', 'horizontal') != 'vertical':
        direction = -direction
    return direction
