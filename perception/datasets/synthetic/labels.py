"""Labels with KITTI's semantics, computed from the exact scene and the rendered instance ids.

* 2D box: the projected 3D box (its edges clipped at a near plane, so boxes reaching behind the camera
  project correctly), clipped to the image ``[0, W - 1] x [0, H - 1]`` as in the KITTI release.
* truncation: the fraction of the unclipped 2D box area outside the image.
* occlusion: from the visible fraction ``v`` = pixels where the object is the first hit / pixels where
  it is hit when cast alone (its unoccluded silhouette), both on a pixel grid of step ``stride``:
  0 if v >= 0.8, 1 if v >= 0.4, 2 if v >= 0.1, else 3.
* Objects not visible at any grid pixel get no row. DontCare: objects whose visible part covers fewer
  than ``min_visible_px`` pixels or whose 2D box is lower than ``min_height`` pixels keep only their
  2D box, as in KITTI.
"""
from typing import Dict, List, Sequence

import numpy as np

from perception.structures import project_points, yaw_to_alpha

from .geometry import transform_points
from .render import World
from .scene import SceneObject

NEAR = 0.1
# The 12 edges of the corner order of ``box_corners``.
_EDGES = [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 3), (2, 6), (3, 7), (4, 5), (4, 6), (5, 7), (6, 7)]


def box_corners(center: np.ndarray, size: np.ndarray, yaw: float) -> np.ndarray:
    """(8, 3) world corners of a box with bottom centre ``center``, size (l, w, h) and ``yaw`` about z;
    corner ``i`` has (x, y, z) signs from the bits of ``i`` (x-major)."""
    signs = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (0.0, 1.0)])
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0.], [s, c, 0.], [0., 0., 1.]])
    return (signs * size) @ rot.T + center


def project_box(corners_cam: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Unclipped 2D box [x1, y1, x2, y2] of a 3D box (8, 3) in the rectified camera frame, or None when
    the box lies entirely behind the near plane."""
    pts = [c for c in corners_cam if c[2] >= NEAR]
    for i, j in _EDGES:
        a, b = corners_cam[i], corners_cam[j]
        if (a[2] - NEAR) * (b[2] - NEAR) < 0:
            pts.append(a + (NEAR - a[2]) / (b[2] - a[2]) * (b - a))
    if not pts:
        return None
    uv = project_points(np.array(pts), P)
    return np.concatenate([uv.min(0), uv.max(0)])


def kitti_labels(objects: Sequence[SceneObject], world: World, instance: np.ndarray, world2rect: np.ndarray,
                 P: np.ndarray, cam2world: np.ndarray, t: float = 0.0, stride: int = 2,
                 min_visible_px: int = 40, min_height: float = 10.0) -> Dict[str, np.ndarray]:
    """KITTI ``label_2`` rows of the objects seen by a camera.

    Args:
        objects: the scene's objects; only those whose 2D box meets the image get a row.
        world: the ray-casting world at time ``t`` (casts each object alone for its silhouette).
        instance: (H, W) instance ids rendered by that camera (see ``render.CameraView``).
        world2rect: (4, 4) world -> rectified camera-0 frame (where KITTI labels live).
        P: (3, 4) projection of the camera from the rectified camera-0 frame.
        cam2world: (4, 4) pose of the camera that rendered ``instance``.
        stride: pixel step of the visibility estimate.

    Returns:
        dict in the layout of ``perception.fileio.kitti.read_label_file`` (objects first, DontCare
        rows last), plus ``track_id`` (N,) (-1 for DontCare), ``visible`` (N,) visible fraction and
        ``truncation_exact`` (N,).
    """
    height, width = instance.shape
    K = P[:, :3]
    rows: List[dict] = []
    dontcare: List[dict] = []
    for obj in objects:
        center, yaw = obj.pose_at(t)
        corners = transform_points(world2rect, box_corners(center, obj.size, yaw))
        box = project_box(corners, P)
        if box is None:
            continue
        clipped = np.clip(box, 0, [width - 1, height - 1, width - 1, height - 1])
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            continue
        full_area = (box[2] - box[0]) * (box[3] - box[1])
        truncation = 1.0 - (clipped[2] - clipped[0]) * (clipped[3] - clipped[1]) / full_area
        seen, silhouette = visible_counts(obj.track_id, world, instance, clipped, K, cam2world, stride)
        visible = min(seen / silhouette, 1.0) if silhouette else 0.0
        visible_px = seen * stride * stride
        if seen == 0:
            continue  # hidden behind other things: KITTI does not label what nobody could see
        heading = world2rect[:3, :3] @ np.array([np.cos(yaw), np.sin(yaw), 0.0])
        ry = float(np.arctan2(-heading[2], heading[0]))
        loc = transform_points(world2rect, center)
        row = dict(name=obj.name, truncated=truncation, occluded=_occlusion_level(visible),
                   alpha=yaw_to_alpha(ry, loc[0], loc[2]), bbox=clipped,
                   dimensions=[obj.size[2], obj.size[1], obj.size[0]], location=loc, rotation_y=ry,
                   track_id=obj.track_id, visible=visible, truncation_exact=truncation)
        if visible_px < min_visible_px or clipped[3] - clipped[1] < min_height:
            dontcare.append(dict(name='DontCare', truncated=-1.0, occluded=-1, alpha=-10.0, bbox=clipped,
                                 dimensions=[-1., -1., -1.], location=[-1000., -1000., -1000.],
                                 rotation_y=-10.0, track_id=-1, visible=visible,
                                 truncation_exact=truncation))
        else:
            rows.append(row)
    rows += dontcare
    keys = ('name', 'truncated', 'occluded', 'alpha', 'bbox', 'dimensions', 'location', 'rotation_y',
            'track_id', 'visible', 'truncation_exact')
    shapes = {'bbox': (4, ), 'dimensions': (3, ), 'location': (3, )}
    labels = {}
    for key in keys:
        values = [r[key] for r in rows]
        dtype = str if key == 'name' else (np.int64 if key in ('occluded', 'track_id') else np.float64)
        labels[key] = np.array(values, dtype=dtype).reshape((len(rows), ) + shapes.get(key, ()))
    return labels


def _occlusion_level(visible: float) -> int:
    for level, threshold in enumerate((0.8, 0.4, 0.1)):
        if visible >= threshold:
            return level
    return 3


def visible_counts(track_id: int, world: World, instance: np.ndarray, box: np.ndarray, K: np.ndarray,
                   cam2world: np.ndarray, stride: int):
    """How many grid pixels of 2D box ``box`` [x1, y1, x2, y2] see object ``track_id`` first (``seen``,
    from ``instance``) and how many would see it with nothing in front (``silhouette``, cast alone)."""
    us = np.arange(int(np.ceil(box[0])), int(np.floor(box[2])) + 1, stride)
    vs = np.arange(int(np.ceil(box[1])), int(np.floor(box[3])) + 1, stride)
    if len(us) == 0 or len(vs) == 0:
        return 0, 0
    u, v = np.meshgrid(us, vs)
    dirs = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones(u.shape)], -1).reshape(-1, 3)
    _, prim = world.cast(cam2world[:3, 3], dirs @ cam2world[:3, :3].T, track_id=track_id)
    silhouette = int((prim >= 0).sum())
    seen = int((instance[v, u].reshape(-1) == track_id + 1).sum())
    return seen, silhouette
