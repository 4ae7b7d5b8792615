"""Ray casting of a street scene with open3d's ``RaycastingScene`` (Embree, CPU).

All triangles of one instant go into one mesh, so a hit's ``primitive_ids`` index per-triangle
attributes: the instance it belongs to, its albedo, its procedural pattern and the frame the pattern is
attached to (so textures move with their object). Shading is albedo x pattern x (ambient + Lambert from
a fixed sun); it does not depend on the viewpoint, so the same surface point has the same colour in
both stereo images.
"""
import functools
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import open3d as o3d
from numba import njit

from .geometry import rot_z
from .scene import SceneObject, Street, object_parts

SKY = -1
STATIC = 0
# The ground lies 5 mm below z = 0, where objects and their labels stand: its LiDAR returns under an
# object then fall strictly outside the label box instead of on its bottom face.
GROUND_Z = -0.005

# Procedural patterns (see ``_solid_factor``).
GROUND, PAINT, STRIPES, CHECKER, WINDOWS, FOLIAGE, GRAIN = range(7)
_SLOT_COLORS = {'dark': (38, 38, 44), 'skin': (224, 180, 150)}
_SLOT_REFLECTANCE = {'paint': 0.6, 'dark': 0.1, 'skin': 0.3, 'cloth': 0.25}
_SUN = np.array([0.35, 0.45, 0.82]) / np.linalg.norm([0.35, 0.45, 0.82])

_BOX_CORNERS = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (0.0, 1.0)])
# Outward-wound faces of the corner order above (x-major, then y, then z).
_BOX_TRIANGLES = np.array([[0, 2, 3], [0, 3, 1], [4, 5, 7], [4, 7, 6], [0, 1, 5], [0, 5, 4],
                           [2, 6, 7], [2, 7, 3], [0, 4, 6], [0, 6, 2], [1, 3, 7], [1, 7, 5]])


@dataclass
class CameraView:
    """What a camera sees: ``image`` (H, W, 3) uint8 RGB, ``depth`` (H, W) float32 z-depth in metres
    (0 where a ray hits nothing), ``instance`` (H, W) int32 (-1 sky, 0 static world, k + 1 for the
    object with ``track_id`` k)."""
    image: np.ndarray
    depth: np.ndarray
    instance: np.ndarray


@dataclass
class LidarScan:
    """One LiDAR sweep in the sensor frame: ``points`` (N, 3) metres, ``intensity`` (N,) in [0, 1],
    ``ring`` (N,) beam index (0 = top beam), ``instance`` (N,) as in :class:`CameraView`."""
    points: np.ndarray
    intensity: np.ndarray
    ring: np.ndarray
    instance: np.ndarray


def pixel_rays(K: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) camera-frame ray directions with z = 1 through the pixel centres.

    Pixel (u, v) is centred at integer coordinates, as in KITTI's projection matrices, so a point that
    projects to (u, v) is seen by the pixel ``(round(u), round(v))``. With z = 1 the ray parameter of a
    hit is its z-depth.
    """
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    return np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)


def lidar_rays(elevations: np.ndarray, num_azimuth: int) -> Tuple[np.ndarray, np.ndarray]:
    """Unit directions (B * A, 3) of a spinning LiDAR in its frame (x forward, y left, z up) and the
    beam index (B * A,) of each."""
    azimuth = np.linspace(np.pi, -np.pi, num_azimuth, endpoint=False)
    el, az = np.meshgrid(elevations, azimuth, indexing='ij')
    dirs = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)
    ring = np.repeat(np.arange(len(elevations)), num_azimuth)
    return dirs.reshape(-1, 3), ring


@functools.lru_cache(maxsize=8)
def _pixel_rays_cached(K: tuple, width: int, height: int) -> np.ndarray:
    """(H * W, 3) float32 :func:`pixel_rays`, computed once per camera."""
    rays = pixel_rays(np.array(K).reshape(3, 3), width, height).reshape(-1, 3).astype(np.float32)
    rays.flags.writeable = False
    return rays


@functools.lru_cache(maxsize=6)
def _camera_rays_cached(K: tuple, rotation: bytes, width: int, height: int) -> Tuple[np.ndarray, np.ndarray]:
    """The rays (H * W, 6) float32 of a camera with ``rotation`` (the bytes of its (3, 3) float64
    cam2world rotation): world-frame directions in columns 3-5 (columns 0-2, the origin, are left to the
    caller), and the sky colour (H * W, 3) uint8 of each.

    Both depend on the orientation only, so a stereo pair, a sequence driving straight or the frames of a
    dataset from one rig share them instead of recomputing them per image.
    """
    rotation = np.frombuffer(rotation, dtype=np.float64).reshape(3, 3)
    dirs = _pixel_rays_cached(K, width, height) @ rotation.T.astype(np.float32)
    rays = np.zeros((len(dirs), 6), np.float32)
    rays[:, 3:] = dirs
    sky = np.clip(World._sky(dirs), 0, 255).astype(np.uint8)
    rays.flags.writeable = False
    sky.flags.writeable = False
    return rays, sky


@functools.lru_cache(maxsize=8)
def _lidar_rays_cached(elevations: tuple, num_azimuth: int) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`lidar_rays`, computed once per sensor."""
    local, ring = lidar_rays(np.array(elevations), num_azimuth)
    local.flags.writeable = False
    ring.flags.writeable = False
    return local, ring


# A fixed table of values in [0, 1): texture grain repeats every 64 cells, far beyond what a frame shows.
_NOISE = np.random.default_rng(20240601).random(64**3, dtype=np.float32)


class World:
    """The triangles of a street and its objects at one instant, ready to be ray cast.

    Args:
        street: the road layout and roadside structures.
        objects: the labelled objects.
        t: time in seconds at which object tracks are evaluated.
        nthreads: Embree threads (0 = all cores). Dataset writers run one world per worker process and
            use 1.
        ground_extent / ground_center: half size in metres and (x, y) centre of the square ground plane
            (sequences centre it under the moving car).
    """

    def __init__(self, street: Street, objects: Sequence[SceneObject], t: float = 0.0, nthreads: int = 1,
                 ground_extent: float = 600.0, ground_center=(0.0, 0.0)):
        self.street = street
        self.nthreads = nthreads
        verts: List[np.ndarray] = []
        tris: List[np.ndarray] = []
        attrs: List[tuple] = []  # (instance, rgb, pattern, reflectance, frame index) per box
        frames: List[tuple] = [(0.0, 0.0, 0.0, 0.0)]  # (x, y, z, yaw) of each texture frame
        self._object_boxes: Dict[int, List[int]] = {}

        def add_box(center, size, yaw, instance, color, pattern, reflectance, frame):
            corners = _BOX_CORNERS * size @ rot_z(yaw).T + center
            tris.append(_BOX_TRIANGLES + 8 * len(verts))
            verts.append(corners)
            attrs.append((instance, color, pattern, reflectance, frame))

        for s in street.structures:
            frames.append((*s.center, s.yaw))
            pattern = {'building': WINDOWS, 'crown': FOLIAGE, 'wall': CHECKER}.get(s.kind, GRAIN)
            add_box(s.center, s.size, s.yaw, STATIC, s.color, pattern, 0.4, len(frames) - 1)
        for obj in objects:
            center, yaw = obj.pose_at(t)
            frames.append((*center, yaw))
            first = len(attrs)
            for part_center, part_size, part_yaw, slot in object_parts(obj, t):
                color = _SLOT_COLORS.get(slot, obj.color)
                if slot == 'cloth':
                    color = tuple(int(0.7 * c) for c in obj.color)
                pattern = {'paint': PAINT + obj.pattern % 3, 'cloth': STRIPES}.get(slot, GRAIN)
                add_box(part_center, part_size, part_yaw, obj.track_id + 1, color, pattern,
                        _SLOT_REFLECTANCE[slot], len(frames) - 1)
            self._object_boxes[obj.track_id] = list(range(first, len(attrs)))
        gx, gy = ground_center
        e = ground_extent
        ground = np.array([[gx - e, gy - e], [gx + e, gy - e], [gx + e, gy + e], [gx - e, gy + e]])
        ground = np.concatenate([ground, np.full((4, 1), GROUND_Z)], axis=1)
        self._box_verts = np.stack(verts).astype(np.float32) if verts else np.zeros((0, 8, 3), np.float32)
        all_verts = np.concatenate([ground] + verts).astype(np.float32)
        all_tris = np.concatenate([np.array([[0, 1, 2], [0, 2, 3]])] + [t_ + 4 for t_ in tris]).astype(np.uint32)
        n_box = len(attrs)

        def per_box(i, dtype):
            return np.array([a[i] for a in attrs], dtype=dtype).reshape(n_box, -1)

        # Triangle 0 and 1 are the ground; each box contributes 12 triangles.
        self.tri_instance = np.concatenate([[STATIC, STATIC], np.repeat(per_box(0, np.int32)[:, 0], 12)])
        self.tri_color = np.concatenate([np.zeros((2, 3)), np.repeat(per_box(1, np.float32), 12, 0)]).astype(np.float32)
        self.tri_pattern = np.concatenate([[GROUND, GROUND], np.repeat(per_box(2, np.int32)[:, 0], 12)])
        self.tri_reflect = np.concatenate([[0.3, 0.3], np.repeat(per_box(3, np.float32)[:, 0], 12)]).astype(np.float32)
        self.tri_frame = np.concatenate([[0, 0], np.repeat(per_box(4, np.int32)[:, 0], 12)])
        frames = np.array(frames, dtype=np.float32)
        self.frame_origin = frames[:, :3]
        self.frame_cos_sin = np.stack([np.cos(frames[:, 3]), np.sin(frames[:, 3])], axis=1)
        v = self._box_verts[:, _BOX_TRIANGLES]
        normals = np.cross(v[:, :, 1] - v[:, :, 0], v[:, :, 2] - v[:, :, 0]).reshape(-1, 3)
        normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
        self.tri_normal = np.concatenate([[[0., 0., 1.], [0., 0., 1.]], normals]).astype(np.float32)
        # Light of each triangle (ambient + Lambert from the sun) seen from the side its normal points
        # to (row 0) and from the back (row 1, the normal turned to face the ray).
        sun = self.tri_normal @ _SUN.astype(np.float32)
        self.tri_light = 0.45 + 0.55 * np.clip(np.stack([sun, -sun]), 0, None)
        self._scene = self._make_scene(all_verts, all_tris)
        self._solo: Dict[int, o3d.t.geometry.RaycastingScene] = {}

    @staticmethod
    def _make_scene(verts: np.ndarray, tris: np.ndarray) -> 'o3d.t.geometry.RaycastingScene':
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(o3d.core.Tensor(verts), o3d.core.Tensor(tris))
        return scene

    def cast(self, origins: np.ndarray, dirs: np.ndarray, track_id: Optional[int] = None):
        """Cast rays (N, 3) + (N, 3) in the world frame.

        Args:
            track_id: cast against that object alone (its unoccluded silhouette) instead of the world.

        Returns:
            t_hit (N,) float32 (inf for a miss) in units of the direction's length and the hit triangle
            (N,) int64 (-1 for a miss; for ``track_id`` the triangle index is not meaningful).
        """
        rays = np.empty((len(dirs), 6), np.float32)
        rays[:, :3] = origins
        rays[:, 3:] = dirs
        return self._cast(rays, track_id)

    def _cast(self, rays: np.ndarray, track_id: Optional[int] = None):
        """:meth:`cast` of rays (N, 6) float32 (origin, direction) in the world frame."""
        scene = self._scene if track_id is None else self._solo_scene(track_id)
        ans = scene.cast_rays(o3d.core.Tensor.from_numpy(rays), nthreads=self.nthreads)
        t_hit = ans['t_hit'].numpy()
        prim = ans['primitive_ids'].numpy().astype(np.int64)
        prim[~np.isfinite(t_hit)] = -1
        return t_hit, prim

    def _solo_scene(self, track_id: int):
        if track_id not in self._solo:
            boxes = self._object_boxes[track_id]
            verts = self._box_verts[boxes].reshape(-1, 3)
            tris = (_BOX_TRIANGLES[None] + 8 * np.arange(len(boxes))[:, None, None]).reshape(-1, 3)
            self._solo[track_id] = self._make_scene(verts, tris.astype(np.uint32))
        return self._solo[track_id]

    def render(self, K: np.ndarray, cam2world: np.ndarray, width: int, height: int) -> CameraView:
        """Render a pinhole camera with intrinsics ``K`` (3, 3) at pose ``cam2world`` (4, 4)."""
        cam2world = np.asarray(cam2world, dtype=np.float64)
        rays, sky = _camera_rays_cached(tuple(np.asarray(K, dtype=np.float64).reshape(-1)),
                                        cam2world[:3, :3].tobytes(), width, height)
        origin = cam2world[:3, 3].astype(np.float32)
        rays = rays.copy()
        rays[:, :3] = origin
        dirs = rays[:, 3:]
        t_hit, prim = self._cast(rays)
        image = np.empty((len(dirs), 3), np.uint8)
        depth = np.empty(len(dirs), np.float32)
        instance = np.empty(len(dirs), np.int32)
        s = self.street
        mids = (s.lanes[:-1] + s.lanes[1:]) / 2
        edges = np.array([s.lanes[0] - s.lane_width / 2, s.lanes[-1] + s.lane_width / 2])
        _shade_pixels(origin, dirs, t_hit, prim, sky, self.tri_light, self.tri_normal, self.tri_instance,
                      self.tri_color, self.tri_pattern, self.tri_frame, self.frame_origin, self.frame_cos_sin,
                      _NOISE, np.float32(s.road_left), np.float32(s.road_right), s.road_left + s.sidewalk,
                      -s.road_right + s.sidewalk, mids.astype(np.float32),
                      s.directions[:-1] == s.directions[1:], edges.astype(np.float32), image, depth, instance)
        return CameraView(image.reshape(height, width, 3), depth.reshape(height, width),
                          instance.reshape(height, width))

    def lidar(self, lidar2world: np.ndarray, elevations: np.ndarray, num_azimuth: int,
              min_range: float = 1.0, max_range: float = 120.0) -> LidarScan:
        """Scan with a spinning LiDAR at pose ``lidar2world``; returns points in the sensor frame."""
        local, ring = _lidar_rays_cached(tuple(np.asarray(elevations, dtype=np.float64)), num_azimuth)
        dirs = local @ lidar2world[:3, :3].T
        t_hit, prim = self.cast(lidar2world[:3, 3], dirs)
        keep = (prim >= 0) & (t_hit >= min_range) & (t_hit <= max_range)
        prim, t = prim[keep], t_hit[keep]
        # Lambertian return: the stronger the more head-on the beam meets the surface (which side the
        # normal faces does not change |cos|).
        cos = np.abs((self.tri_normal[prim] * dirs[keep]).sum(-1))
        intensity = self.tri_reflect[prim] * (0.3 + 0.7 * cos)
        return LidarScan((local[keep] * t[:, None]).astype(np.float32), intensity.astype(np.float32),
                         ring[keep], self.tri_instance[prim].astype(np.int32))

    @staticmethod
    def _sky(dirs: np.ndarray) -> np.ndarray:
        up = np.clip(dirs[:, 2] / np.sqrt(np.einsum('ij,ij->i', dirs, dirs)), 0, 1)[:, None]
        return (1 - up) * np.float32([205, 218, 232]) + up * np.float32([110, 150, 205])


# Per-pixel shading, compiled with numba (a dependency of mmdet3d; ``cache=True`` keeps the machine code
# in __pycache__): one pass over the frame instead of a dozen numpy passes over it. The arithmetic is
# float32 as in the former numpy version on float32 arrays (python constants rounded to float32 first, the
# stripe/checker/window factors multiplied in float64), so images are the same to the bit.
_F = np.float32


@njit(cache=True, nogil=True, error_model='numpy')
def _noise(x, y, z, cell, noise):
    """Deterministic value in [0, 1) of the cell of size ``cell`` holding point (x, y, z): texture grain
    without a random state."""
    i = np.int64(np.floor(x / cell)) & 63
    j = np.int64(np.floor(y / cell)) & 63
    k = np.int64(np.floor(z / cell)) & 63
    return noise[(i << 12) | (j << 6) | k]


@njit(cache=True, nogil=True, error_model='numpy')
def _ground_albedo(x, y, z, noise, road_left, road_right, walk_left, walk_right, mids, dashed, edges, rgb):
    """Albedo of the road, its markings, sidewalk tiles and the verge at ground point (x, y, z), into
    ``rgb`` (3,) float32."""
    r, g, b = _F(82), _F(82), _F(88)
    factor = _F(0.8) + _F(0.4) * _noise(x, y, z, _F(0.12), noise)
    on_road = y < road_left and y > road_right
    if on_road:
        # Dashed lines between lanes of one direction, a solid line where the direction changes.
        for i in range(len(mids)):
            if abs(y - mids[i]) < _F(0.08) and (not dashed[i] or x % _F(9.0) < _F(3.0)):
                if dashed[i]:
                    r, g, b = _F(235), _F(235), _F(225)
                else:
                    r, g, b = _F(230), _F(190), _F(40)
    for i in range(len(edges)):
        if abs(y - edges[i]) < _F(0.08):
            r, g, b = _F(235), _F(235), _F(225)
    if not on_road:
        if np.float64(abs(y)) < (walk_left if y > 0 else walk_right):
            r, g, b = _F(168), _F(162), _F(155)
            if abs(x % _F(0.6)) < _F(0.03) or abs(y % _F(0.6)) < _F(0.03):
                factor = factor * _F(0.6)
        else:
            r, g, b = _F(92), _F(118), _F(62)
            factor = _F(0.6) + _F(0.8) * _noise(x, y, z, _F(0.2), noise)
    rgb[0], rgb[1], rgb[2] = r * factor, g * factor, b * factor


@njit(cache=True, nogil=True, error_model='numpy')
def _solid_factor(x, y, z, pattern, noise):
    """Procedural pattern factor at point (x, y, z) in its owner's frame."""
    grain = _noise(x, y, z, _F(0.07), noise)
    factor = _F(0.88) + _F(0.24) * grain
    if pattern == PAINT:
        factor = _F(0.92) + _F(0.16) * grain
    elif pattern == STRIPES:
        if np.floor(z / _F(0.12)) % _F(2) != 0:
            factor = _F(np.float64(factor) * 0.7)
    elif pattern == CHECKER:
        if (np.floor(x / _F(0.5)) + np.floor(y / _F(0.5)) + np.floor(z / _F(0.5))) % _F(2) != 0:
            factor = _F(np.float64(factor) * 0.72)
    elif pattern == WINDOWS:
        along = (abs(x) + abs(y)) % _F(3.0)
        height = z % _F(3.2)
        if along > _F(0.8) and along < _F(2.2) and height > _F(1.0) and height < _F(2.6):
            factor = _F(np.float64(factor) * 0.35)
    elif pattern == FOLIAGE:
        factor = _F(0.55) + _F(0.9) * _noise(x, y, z, _F(0.25), noise)
    return factor


@njit(cache=True, nogil=True, error_model='numpy')
def _shade_pixels(origin, dirs, t_hit, prim, sky, tri_light, tri_normal, tri_instance, tri_color, tri_pattern,
                  tri_frame, frame_origin, frame_cos_sin, noise, road_left, road_right, walk_left, walk_right,
                  mids, dashed, edges, image, depth, instance):
    """Colour (uint8), z-depth and instance id of every ray of a camera from its hits.

    Colour is albedo x pattern x light, where light is ambient + Lambert from a fixed sun with the
    normal turned to face the ray; rays that miss get the sky colour ``sky``.
    """
    rgb = np.empty(3, np.float32)
    for i in range(len(prim)):
        p = prim[i]
        if p < 0:
            image[i] = sky[i]
            depth[i] = 0
            instance[i] = SKY
            continue
        t = t_hit[i]
        dx, dy, dz = dirs[i, 0], dirs[i, 1], dirs[i, 2]
        x, y, z = origin[0] + dx * t, origin[1] + dy * t, origin[2] + dz * t
        n = tri_normal[p]
        facing = n[0] * dx + n[1] * dy + n[2] * dz > 0
        light = tri_light[1 if facing else 0, p]
        if p < 2:
            _ground_albedo(x, y, z, noise, road_left, road_right, walk_left, walk_right, mids, dashed, edges,
                           rgb)
        else:
            f = tri_frame[p]
            ox, oy, oz = x - frame_origin[f, 0], y - frame_origin[f, 1], z - frame_origin[f, 2]
            # Frames only rotate about z: the inverse rotation is a 2D one.
            cos, sin = frame_cos_sin[f, 0], frame_cos_sin[f, 1]
            factor = _solid_factor(cos * ox + sin * oy, cos * oy - sin * ox, oz, tri_pattern[p], noise)
            for c in range(3):
                rgb[c] = tri_color[p, c] * factor
        for c in range(3):
            v = rgb[c] * light
            image[i, c] = np.uint8(min(max(v, _F(0)), _F(255)))
        depth[i] = t
        instance[i] = tri_instance[p]
