"""Scene sampling: a straight street with roadside structures and the objects that use it.

Everything here is plain data in the world frame (x forward, y left, z up, ground z = 0); rendering
lives in ``render.py``. An object is a composite of axis-aligned part boxes in its own frame (x along
its length, y along its width, z up, origin at the bottom centre), and the parts of each class are laid
out so that their union touches all six faces of the (l, w, h) box: the 3D label is the object's tight
box. The parts are built ``INSET`` smaller on every side so that LiDAR returns lie strictly inside the
label (points exactly on a face would be counted in or out by rounding).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .geometry import make_pose, rot_z

INSET = 0.01

# Normalised part boxes: (x0, x1, y0, y1) in units of l and w around the centre, (z0, z1) in units of h,
# and a material slot: 'paint' (the object's colour), 'dark' (tyres, glass), 'skin', 'cloth'.
_WHEELS = [(sx - 0.09, sx + 0.09, sy - 0.1, sy + 0.1, 0.0, 0.34, 'dark')
           for sx in (-0.32, 0.32) for sy in (-0.4, 0.4)]
PART_TEMPLATES: Dict[str, List[tuple]] = {
    'car': [(-0.5, 0.5, -0.5, 0.5, 0.18, 0.6, 'paint'), (-0.3, 0.18, -0.45, 0.45, 0.6, 1.0, 'dark')]
    + _WHEELS,
    'van': [(-0.5, 0.3, -0.5, 0.5, 0.16, 1.0, 'paint'), (0.3, 0.5, -0.48, 0.48, 0.16, 0.55, 'paint'),
            (0.22, 0.3, -0.47, 0.47, 0.6, 0.9, 'dark')] + _WHEELS,
    'truck': [(-0.5, 0.28, -0.5, 0.5, 0.2, 1.0, 'cloth'), (0.3, 0.5, -0.48, 0.48, 0.16, 0.78, 'paint'),
              (0.44, 0.5, -0.45, 0.45, 0.5, 0.72, 'dark')] + _WHEELS,
    'bus': [(-0.5, 0.5, -0.5, 0.5, 0.12, 0.62, 'paint'), (-0.5, 0.5, -0.49, 0.49, 0.62, 0.9, 'dark'),
            (-0.5, 0.5, -0.5, 0.5, 0.9, 1.0, 'paint')] + _WHEELS,
    'trailer': [(-0.5, 0.42, -0.5, 0.5, 0.22, 1.0, 'cloth'), (0.42, 0.5, -0.05, 0.05, 0.22, 0.3, 'dark')]
    + [(-0.3, -0.14, sy - 0.1, sy + 0.1, 0.0, 0.24, 'dark') for sy in (-0.4, 0.4)],
    'construction_vehicle': [(-0.5, 0.1, -0.5, 0.5, 0.0, 0.45, 'paint'),
                             (-0.3, 0.05, -0.35, 0.35, 0.45, 1.0, 'dark'),
                             (0.1, 0.5, -0.15, 0.15, 0.3, 0.5, 'paint')],
    'pedestrian': [(0.05, 0.5, -0.3, -0.05, 0.0, 0.5, 'cloth'), (-0.5, -0.05, 0.05, 0.3, 0.0, 0.5, 'cloth'),
                   (-0.25, 0.25, -0.5, 0.5, 0.5, 0.86, 'paint'), (-0.15, 0.15, -0.17, 0.17, 0.86, 1.0, 'skin')],
    'person_sitting': [(-0.5, 0.05, -0.5, 0.5, 0.3, 0.82, 'paint'), (-0.05, 0.5, -0.35, 0.35, 0.3, 0.48, 'cloth'),
                       (0.32, 0.5, -0.35, 0.35, 0.0, 0.3, 'cloth'), (-0.35, -0.05, -0.17, 0.17, 0.82, 1.0, 'skin')],
    'cyclist': [(0.2, 0.5, -0.06, 0.06, 0.0, 0.4, 'dark'), (-0.5, -0.2, -0.06, 0.06, 0.0, 0.4, 'dark'),
                (-0.3, 0.3, -0.08, 0.08, 0.3, 0.46, 'paint'), (-0.22, 0.12, -0.5, 0.5, 0.46, 0.86, 'cloth'),
                (-0.12, 0.08, -0.17, 0.17, 0.86, 1.0, 'skin')],
    'bicycle': [(0.15, 0.5, -0.2, 0.2, 0.0, 0.7, 'dark'), (-0.5, -0.15, -0.2, 0.2, 0.0, 0.7, 'dark'),
                (-0.35, 0.35, -0.5, 0.5, 0.6, 1.0, 'paint')],
    'traffic_cone': [(-0.5, 0.5, -0.5, 0.5, 0.0, 0.08, 'dark'), (-0.32, 0.32, -0.32, 0.32, 0.08, 0.55, 'paint'),
                     (-0.18, 0.18, -0.18, 0.18, 0.55, 1.0, 'paint')],
    'barrier': [(-0.5, 0.5, -0.5, 0.5, 0.0, 0.2, 'dark'), (-0.5, 0.5, -0.3, 0.3, 0.2, 1.0, 'paint')],
}


@dataclass(frozen=True)
class ClassSpec:
    """Size statistics and behaviour of one object class.

    ``size_mean`` / ``size_std`` are (l, w, h) in metres (KITTI classes from the KITTI training labels,
    nuScenes classes from its annotation statistics). ``zone`` is where it is placed, ``speed`` the
    range of speeds in m/s when it moves, ``moving_prob`` how often it moves.
    """
    shape: str
    size_mean: Tuple[float, float, float]
    size_std: Tuple[float, float, float]
    zone: str
    speed: Tuple[float, float] = (0.0, 0.0)
    moving_prob: float = 0.0
    colors: Tuple[Tuple[int, int, int], ...] = ((180, 180, 180), )


_CAR_COLORS = ((200, 30, 30), (30, 60, 170), (220, 220, 215), (40, 40, 45), (150, 150, 155),
               (20, 110, 60), (230, 180, 20), (120, 70, 40))
_CLOTH_COLORS = ((200, 50, 50), (40, 80, 160), (60, 150, 70), (230, 200, 40), (90, 60, 130),
                 (240, 130, 30))

KITTI_CLASSES: Dict[str, ClassSpec] = {
    'Car': ClassSpec('car', (3.88, 1.63, 1.53), (0.43, 0.10, 0.14), 'vehicle', (3, 14), 0.6, _CAR_COLORS),
    'Van': ClassSpec('van', (5.08, 1.90, 2.21), (0.49, 0.14, 0.32), 'vehicle', (3, 12), 0.5, _CAR_COLORS),
    'Truck': ClassSpec('truck', (10.1, 2.59, 3.25), (2.0, 0.18, 0.40), 'vehicle', (3, 10), 0.5, _CAR_COLORS),
    'Pedestrian': ClassSpec('pedestrian', (0.84, 0.66, 1.76), (0.23, 0.14, 0.11), 'sidewalk', (0.6, 1.8),
                            0.6, _CLOTH_COLORS),
    'Cyclist': ClassSpec('cyclist', (1.76, 0.60, 1.74), (0.18, 0.12, 0.09), 'road_edge', (2, 7), 0.8,
                         _CLOTH_COLORS),
    'Person_sitting': ClassSpec('person_sitting', (0.80, 0.54, 1.27), (0.17, 0.07, 0.12), 'sidewalk',
                                colors=_CLOTH_COLORS),
}
# How often each class is drawn: roughly the KITTI label statistics, with rare classes boosted.
KITTI_CLASS_WEIGHTS = {'Car': 0.55, 'Van': 0.08, 'Truck': 0.05, 'Pedestrian': 0.18, 'Cyclist': 0.09,
                       'Person_sitting': 0.05}

NUSCENES_CLASSES: Dict[str, ClassSpec] = {
    'vehicle.car': ClassSpec('car', (4.63, 1.96, 1.74), (0.45, 0.18, 0.2), 'vehicle', (3, 12), 0.6,
                             _CAR_COLORS),
    'vehicle.truck': ClassSpec('truck', (6.9, 2.5, 2.8), (1.5, 0.2, 0.4), 'vehicle', (3, 10), 0.5, _CAR_COLORS),
    'vehicle.bus.rigid': ClassSpec('bus', (11.0, 2.95, 3.47), (1.0, 0.1, 0.2), 'vehicle', (3, 9), 0.5,
                                   ((230, 200, 40), (40, 120, 200), (210, 40, 40))),
    'vehicle.trailer': ClassSpec('trailer', (10.0, 2.9, 3.9), (2.0, 0.2, 0.3), 'parking',
                                 colors=((200, 200, 200), (100, 110, 120))),
    'vehicle.construction': ClassSpec('construction_vehicle', (6.4, 2.8, 3.2), (1.0, 0.2, 0.4), 'parking',
                                      colors=((240, 190, 20), (230, 120, 20))),
    'human.pedestrian.adult': ClassSpec('pedestrian', (0.73, 0.67, 1.77), (0.15, 0.1, 0.12), 'sidewalk',
                                        (0.6, 1.8), 0.6, _CLOTH_COLORS),
    'vehicle.motorcycle': ClassSpec('cyclist', (2.1, 0.77, 1.47), (0.2, 0.1, 0.1), 'road_edge', (3, 10), 0.6,
                                    _CAR_COLORS),
    'vehicle.bicycle': ClassSpec('bicycle', (1.7, 0.6, 1.28), (0.15, 0.08, 0.1), 'sidewalk',
                                 colors=_CLOTH_COLORS),
    'movable_object.trafficcone': ClassSpec('traffic_cone', (0.41, 0.41, 1.07), (0.05, 0.05, 0.1),
                                            'road_edge', colors=((240, 110, 20), )),
    'movable_object.barrier': ClassSpec('barrier', (0.5, 2.5, 0.98), (0.1, 0.3, 0.1), 'road_edge',
                                        colors=((220, 220, 220), (230, 60, 40))),
}


@dataclass
class SceneObject:
    """One labelled object with a constant-velocity track.

    Attributes:
        name: class name (a key of ``KITTI_CLASSES`` or ``NUSCENES_CLASSES``).
        size: (3,) l, w, h in metres: the tight box of the object.
        center: (3,) bottom centre at t = 0 in the world frame, metres.
        yaw: heading at t = 0, radians about z (0 = world x).
        speed: m/s along the heading.
        color: RGB of the painted parts; ``pattern``: index of the procedural texture.
        track_id: unique within a scene (render instance id is ``track_id + 1``).
    """
    name: str
    size: np.ndarray
    center: np.ndarray
    yaw: float
    speed: float = 0.0
    color: Tuple[int, int, int] = (180, 180, 180)
    pattern: int = 0
    track_id: int = 0
    spec: Optional[ClassSpec] = field(default=None, repr=False)

    def pose_at(self, t: float) -> Tuple[np.ndarray, float]:
        """Bottom centre (3,) and yaw at time ``t`` seconds."""
        heading = np.array([np.cos(self.yaw), np.sin(self.yaw), 0.0])
        return self.center + self.speed * t * heading, self.yaw

    def velocity(self) -> np.ndarray:
        """(2,) world velocity in m/s."""
        return self.speed * np.array([np.cos(self.yaw), np.sin(self.yaw)])


@dataclass
class Structure:
    """A static roadside solid (building, wall, pole, tree part): a box in the world frame.

    ``center`` is the bottom centre; ``size`` is (l, w, h) along (x, y, z) after rotation by ``yaw``.
    """
    kind: str
    center: np.ndarray
    size: np.ndarray
    yaw: float
    color: Tuple[int, int, int]


@dataclass
class Street:
    """A straight road along world x with lanes, parking strips, sidewalks and roadside structures.

    y coordinates of the lane centres are in ``lanes`` (+ for the left side), ``directions`` says
    which way traffic flows in each (+1 along x, -1 against); ``road_left`` / ``road_right`` are the
    kerbs and ``sidewalk`` the sidewalk width in metres.
    """
    lane_width: float
    lanes: np.ndarray
    directions: np.ndarray
    road_left: float
    road_right: float
    sidewalk: float
    structures: List[Structure]


def sample_street(rng: np.random.Generator, x_range: Tuple[float, float]) -> Street:
    """A street whose structures cover ``x_range`` (metres along world x)."""
    lane_width = rng.uniform(3.1, 3.8)
    n_left, n_right = int(rng.integers(1, 3)), int(rng.integers(0, 2))
    lanes = np.arange(-n_right, n_left + 1) * lane_width
    directions = np.where(lanes > 0, -1, 1)
    parking = rng.uniform(2.2, 2.8, size=2) * (rng.random(2) < 0.7)
    road_left = lanes.max() + lane_width / 2 + parking[0]
    road_right = lanes.min() - lane_width / 2 - parking[1]
    sidewalk = rng.uniform(2.0, 4.0)
    structures = []
    for side, kerb in ((1, road_left), (-1, road_right)):
        edge = abs(kerb) + sidewalk
        x = x_range[0] - rng.uniform(0, 15)
        while x < x_range[1]:
            kind = rng.choice(['building', 'building', 'wall', 'trees'])
            length = rng.uniform(8, 30) if kind == 'building' else rng.uniform(10, 25)
            if kind == 'building':
                depth, height = rng.uniform(8, 15), rng.uniform(5, 18)
                setback = rng.uniform(0.5, 5)
                gray = rng.integers(120, 220)
                color = tuple(int(c) for c in np.clip(gray + rng.integers(-40, 40, 3), 40, 250))
                center = np.array([x + length / 2, side * (edge + setback + depth / 2), 0.])
                structures.append(Structure('building', center, np.array([length, depth, height]), 0.0, color))
            elif kind == 'wall':
                structures.append(Structure('wall', np.array([x + length / 2, side * (edge + 0.3), 0.]),
                                            np.array([length, 0.4, rng.uniform(1.0, 2.5)]), 0.0,
                                            (int(rng.integers(140, 200)), 120, 100)))
            else:
                for tx in np.arange(x + 2, x + length, rng.uniform(5, 9)):
                    ty = side * (edge + rng.uniform(1, 3))
                    trunk_h = rng.uniform(2, 3.5)
                    structures.append(Structure('trunk', np.array([tx, ty, 0.]), np.array([0.35, 0.35, trunk_h]),
                                                rng.uniform(0, np.pi), (90, 65, 40)))
                    crown = rng.uniform(2.5, 4.5)
                    structures.append(Structure('crown', np.array([tx, ty, trunk_h]),
                                                np.array([crown, crown, crown * rng.uniform(0.8, 1.3)]),
                                                rng.uniform(0, np.pi), (50, int(rng.integers(100, 150)), 50)))
            x += length + rng.uniform(0, 6)
        # Street lights on the kerb give depth maps thin vertical structure close to the road.
        for px in np.arange(x_range[0] + rng.uniform(0, 20), x_range[1], rng.uniform(18, 30)):
            structures.append(Structure('pole', np.array([px, side * (abs(kerb) + 0.5), 0.]),
                                        np.array([0.2, 0.2, rng.uniform(5, 8)]), 0.0, (110, 110, 115)))
    return Street(lane_width, lanes, directions, road_left, road_right, sidewalk, structures)


def _footprint(center: np.ndarray, size: np.ndarray, yaw: float, margin: float) -> np.ndarray:
    """(4, 2) BEV corners of a box grown by ``margin`` metres on each side."""
    half = np.array([size[0] / 2 + margin, size[1] / 2 + margin])
    local = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * half
    c, s = np.cos(yaw), np.sin(yaw)
    return local @ np.array([[c, s], [-s, c]]) + center[:2]


def _polygons_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test of two convex (4, 2) rectangles."""
    # Most pairs are far apart: bounding circles reject them without the axis loop.
    ca, cb = a.mean(0), b.mean(0)
    ra, rb = np.abs(a - ca).sum(1).max(), np.abs(b - cb).sum(1).max()
    if np.abs(ca - cb).sum() > ra + rb:
        return False
    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def _circles(polys: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Centres (K, 2) and L1 radii (K,) of the bounding circles of ``_polygons_overlap`` for (K, 4, 2)
    polygons."""
    centers = polys.mean(1)
    return centers, np.abs(polys - centers[:, None]).sum(2).max(1)


def _near(poly: np.ndarray, polys: np.ndarray, centers: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """The polygons of ``polys`` (K, 4, 2) that the bounding circles of ``_polygons_overlap`` do not
    separate from ``poly`` (4, 2): the same test, for all of them at once."""
    (center, ), (radius, ) = _circles(poly[None])
    return polys[np.abs(centers - center).sum(1) <= radii + radius]


@dataclass
class Ego:
    """The recording car: a footprint (for collision checks) and a smooth trajectory.

    ``pose_at(t)`` gives the ego->world (4, 4) pose: forward speed ``speed`` m/s and a yaw that
    oscillates with amplitude ``yaw_amp`` rad and period ``yaw_period`` s, so that sequences have a small
    yaw rate but stay on their lane. The trajectory is integrated in closed form.
    """
    speed: float = 0.0
    yaw_amp: float = 0.0
    yaw_period: float = 20.0
    start: Tuple[float, float] = (0.0, 0.0)
    size: Tuple[float, float] = (4.6, 1.9)
    offset: float = -1.0

    def yaw_at(self, t: float) -> float:
        return self.yaw_amp * np.sin(2 * np.pi * t / self.yaw_period)

    def pose_at(self, t: float, steps: int = 64) -> np.ndarray:
        # Midpoint integration of the heading: exact enough (< 1 mm over a 10 s sequence).
        ts = (np.arange(steps) + 0.5) * t / steps
        yaws = self.yaw_amp * np.sin(2 * np.pi * ts / self.yaw_period)
        xy = np.array(self.start) + self.speed * t / steps * np.array([np.cos(yaws).sum(), np.sin(yaws).sum()])
        return make_pose(rot_z(self.yaw_at(t)), [xy[0], xy[1], 0.0])

    def footprint_at(self, t: float, margin: float) -> np.ndarray:
        pose = self.pose_at(t)
        yaw = self.yaw_at(t)
        center = pose[:3, 3] + pose[:3, 0] * self.offset
        return _footprint(center, np.array(self.size), yaw, margin)


def sample_objects(rng: np.random.Generator, street: Street, classes: Dict[str, ClassSpec],
                   weights: Dict[str, float], num: int, ego: Ego, times: Sequence[float],
                   region, required: Sequence[str] = (), required_region=None,
                   max_tries: int = 40) -> List[SceneObject]:
    """Place up to ``num`` objects (plus one of each ``required`` class first) without overlaps.

    Args:
        rng: the scene's random generator.
        street: where lanes, parking strips and sidewalks are.
        classes / weights: which classes exist and how often each is drawn.
        num: number of objects to try to place.
        ego: the recording car; objects never overlap its footprint.
        times: (T,) seconds at which no two footprints (0.3 m margin) may overlap.
        region: ``region(rng) -> (x, y)`` a candidate position at t = 0; it sets how far from
            the sensors objects appear (e.g. 4-70 m ahead for KITTI).
        required: classes placed first so that every one appears (nuScenes evaluation needs all).
        required_region: where the ``required`` objects go (default ``region``).
        max_tries: rejection-sampling attempts per object.

    Returns:
        the placed objects, ``track_id`` 0..N-1 in placement order.
    """
    names = list(weights)
    probs = np.array([weights[n] for n in names], dtype=np.float64)
    probs /= probs.sum()
    fixed = np.array([_footprint(s.center, s.size, s.yaw, 0.1) for s in street.structures
                      if s.kind in ('pole', 'trunk')]).reshape(-1, 4, 2)
    fixed_circles = _circles(fixed)
    placed: List[SceneObject] = []
    tracks: List[List[np.ndarray]] = []
    ego_tracks = [ego.footprint_at(t, 0.5) for t in times]
    wanted = [(name, required_region or region) for name in required]
    wanted += [(names[i], region) for i in rng.choice(len(names), size=num, p=probs)]
    for name, where in wanted:
        spec = classes[name]
        for _ in range(max_tries):
            obj = _propose(rng, name, spec, street, where)
            if obj.speed == 0:
                obj_tracks = [_footprint(obj.center, obj.size, obj.yaw, 0.15)] * len(times)
            else:
                obj_tracks = [_footprint(obj.pose_at(t)[0], obj.size, obj.yaw, 0.15) for t in times]
            if any(_polygons_overlap(f, g) for f, g in zip(obj_tracks, ego_tracks)):
                continue
            # Two standing objects need one check, not one per time step.
            if any(_polygons_overlap(obj_tracks[0], other[0]) if obj.speed == 0 and other_obj.speed == 0 else
                   any(_polygons_overlap(f, g) for f, g in zip(obj_tracks, other))
                   for other_obj, other in zip(placed, tracks)):
                continue
            if any(_polygons_overlap(f, g)
                   for f in _distinct(obj_tracks) for g in _near(f, fixed, *fixed_circles)):
                continue
            obj.track_id = len(placed)
            placed.append(obj)
            tracks.append(obj_tracks)
            break
    return placed


def _distinct(tracks: List[np.ndarray]) -> List[np.ndarray]:
    """The distinct footprints of a track (one for a standing object)."""
    return tracks[:1] if all(t is tracks[0] for t in tracks) else tracks


def _propose(rng: np.random.Generator, name: str, spec: ClassSpec, street: Street, region) -> SceneObject:
    """One candidate object of class ``name`` at a random spot of its zone."""
    size = np.maximum(rng.normal(spec.size_mean, spec.size_std), 0.3 * np.array(spec.size_mean))
    # Labels store 2 decimals: build the object with exactly the sizes its label will have.
    size = np.round(size, 2)
    x, y = region(rng)
    speed = rng.uniform(*spec.speed) if rng.random() < spec.moving_prob else 0.0
    zone = spec.zone
    if zone == 'vehicle':
        zone = 'lane' if speed > 0 or rng.random() < 0.5 else 'parking'
    if zone == 'lane':
        i = int(np.argmin(np.abs(street.lanes - y)))
        y = street.lanes[i] + rng.normal(0, 0.25)
        yaw = (0.0 if street.directions[i] > 0 else np.pi) + rng.normal(0, 0.05)
    elif zone == 'parking':
        side = 1 if y > 0 else -1
        kerb = street.road_left if side > 0 else street.road_right
        y = kerb - side * rng.uniform(1.0, 1.6)
        yaw = rng.choice([0.0, np.pi]) + rng.normal(0, 0.15) if rng.random() < 0.7 else rng.uniform(-np.pi, np.pi)
    elif zone == 'road_edge':
        side = 1 if y > 0 else -1
        kerb = street.road_left if side > 0 else street.road_right
        y = kerb - side * rng.uniform(0.5, 1.5)
        yaw = (np.pi if side > 0 else 0.0) + rng.normal(0, 0.1) if speed > 0 else rng.uniform(-np.pi, np.pi)
    else:
        side = 1 if y > 0 else -1
        kerb = street.road_left if side > 0 else street.road_right
        y = kerb + side * rng.uniform(0.5, street.sidewalk - 0.5)
        yaw = rng.uniform(-np.pi, np.pi)
        if speed > 0 and rng.random() < 0.7:
            yaw = rng.choice([0.0, np.pi]) + rng.normal(0, 0.1)
    if rng.random() < 0.15 and speed == 0:
        yaw = rng.uniform(-np.pi, np.pi)
    # KITTI labels store the camera-frame yaw ry = -yaw - pi/2 with 2 decimals: quantise that one.
    ry = np.round(np.arctan2(np.sin(-yaw - np.pi / 2), np.cos(-yaw - np.pi / 2)), 2)
    yaw = float(-ry - np.pi / 2)
    color = spec.colors[int(rng.integers(len(spec.colors)))]
    color = tuple(int(c) for c in np.clip(np.array(color) + rng.integers(-15, 16, 3), 0, 255))
    return SceneObject(name, size, np.array([np.round(x, 2), np.round(y, 2), 0.0]), yaw, float(speed), color,
                       int(rng.integers(4)), spec=spec)


def object_parts(obj: SceneObject, t: float = 0.0):
    """The part boxes of ``obj`` at time ``t``.

    Yields:
        (center (3,), size (3,), yaw, slot): the bottom centre and (l, w, h) of each part box in the
        world frame, already ``INSET`` from the label box, and its material slot.
    """
    center, yaw = obj.pose_at(t)
    l, w, h = obj.size
    rot = rot_z(yaw)
    for x0, x1, y0, y1, z0, z1, slot in PART_TEMPLATES[obj.spec.shape]:
        lo = np.maximum(np.array([x0 * l, y0 * w, z0 * h]), [-l / 2 + INSET, -w / 2 + INSET, INSET])
        hi = np.minimum(np.array([x1 * l, y1 * w, z1 * h]), [l / 2 - INSET, w / 2 - INSET, h - INSET])
        local = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
        yield center + rot @ local, hi - lo, yaw, slot
