"""Rigid transforms and the sensor rigs of the synthetic world.

Frames. The world and every ego frame are x forward, y left, z up, in metres, with the ground at z = 0.
Cameras use the KITTI/OpenCV frame (x right, y down, z forward). A pose ``a2b`` is the (4, 4) matrix
that maps homogeneous points of frame ``a`` into frame ``b``.
"""
from typing import Dict

import numpy as np

# Camera frame axes expressed in an x-forward, y-left, z-up frame: the columns are the camera's x
# (right), y (down) and z (forward) directions.
CAM_AXES_IN_EGO = np.array([[0., 0., 1.], [-1., 0., 0.], [0., -1., 0.]])


def make_pose(rotation: np.ndarray, translation) -> np.ndarray:
    """(3, 3) rotation and (3,) translation -> (4, 4) pose."""
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = translation
    return pose


def rot_z(yaw: float) -> np.ndarray:
    """(3, 3) rotation by ``yaw`` radians about z (counter-clockwise seen from above)."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.], [s, c, 0.], [0., 0., 1.]])


def transform_points(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) pose to (..., 3) points."""
    return points @ pose[:3, :3].T + pose[:3, 3]


def yaw_quaternion(yaw: float) -> list:
    """The [w, x, y, z] quaternion of a rotation by ``yaw`` about z (the nuScenes convention)."""
    return [float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2))]


def matrix_quaternion(rotation: np.ndarray) -> list:
    """[w, x, y, z] quaternion (w >= 0) of a (3, 3) rotation matrix."""
    m = rotation
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0] * 4
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    q = np.array(q)
    q = q if q[0] >= 0 else -q
    return [float(v) for v in q / np.linalg.norm(q)]


def quaternion_matrix(q) -> np.ndarray:
    """(3, 3) rotation matrix of a [w, x, y, z] quaternion."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


class KittiRig:
    """The KITTI recording car: 4 rectified cameras, a Velodyne HDL-64E and an OXTS unit.

    The rectification, LiDAR and IMU calibrations are those of the real 2011_09_26 recordings, so
    the matrices look and compose like real ones (``lidar2img = P2 @ R0_rect @ Tr_velo_to_cam``). The
    rectified camera-0 frame is level, 1.65 m above the ground; camera 2 (left colour) sits 0.06 m left
    of camera 0 and camera 3 (right colour) 0.54 m right of camera 2, as in the real rig. The ego frame
    is the ground point below camera 0 (x forward, y left, z up).
    """

    width, height = 1242, 375
    focal, cx, cy = 721.5377, 609.5593, 172.854
    cam_height = 1.65
    baseline = 0.54
    # x of each camera centre in the rectified camera-0 frame: cameras 0..3.
    cam_x = (0.0, 0.54, -0.06, 0.48)
    R0_rect = np.array([[9.999239e-01, 9.837760e-03, -7.445048e-03],
                        [-9.869795e-03, 9.999421e-01, -4.278459e-03],
                        [7.402527e-03, 4.351614e-03, 9.999631e-01]])
    Tr_velo_to_cam = np.array([[7.533745e-03, -9.999714e-01, -6.166020e-04, -4.069766e-03],
                               [1.480249e-02, 7.280733e-04, -9.998902e-01, -7.631618e-02],
                               [9.998621e-01, 7.523790e-03, 1.480755e-02, -2.717806e-01]])
    Tr_imu_to_velo = np.array([[9.999976e-01, 7.553071e-04, -2.035826e-03, -8.086759e-01],
                               [-7.854027e-04, 9.998898e-01, -1.482298e-02, 3.195559e-01],
                               [2.024406e-03, 1.482454e-02, 9.998881e-01, -7.997231e-01]])

    def __init__(self):
        self.K = np.array([[self.focal, 0., self.cx], [0., self.focal, self.cy], [0., 0., 1.]])
        # rect2ego: camera axes in the ego frame, origin cam_height above the ground.
        self.rect2ego = make_pose(CAM_AXES_IN_EGO, [0., 0., self.cam_height])
        r0 = make_pose(self.R0_rect, np.zeros(3))
        self.velo2rect = r0 @ np.vstack([self.Tr_velo_to_cam, [0., 0., 0., 1.]])
        self.velo2ego = self.rect2ego @ self.velo2rect
        self.imu2ego = self.velo2ego @ np.vstack([self.Tr_imu_to_velo, [0., 0., 0., 1.]])

    def P(self, cam: int) -> np.ndarray:
        """(3, 4) projection from the rectified camera-0 frame to the pixels of camera ``cam``."""
        return self.K @ np.hstack([np.eye(3), [[-self.cam_x[cam]], [0.], [0.]]])

    def cam2ego(self, cam: int) -> np.ndarray:
        """(4, 4) pose of camera ``cam`` (rectified, so axes as camera 0) in the ego frame."""
        return self.rect2ego @ make_pose(np.eye(3), [self.cam_x[cam], 0., 0.])

    def calib(self) -> Dict[str, np.ndarray]:
        """The KITTI object calibration: P0..P3 (3, 4), R0_rect (3, 3), Tr_velo_to_cam, Tr_imu_to_velo."""
        calib = {f'P{i}': self.P(i) for i in range(4)}
        calib.update(R0_rect=self.R0_rect, Tr_velo_to_cam=self.Tr_velo_to_cam,
                     Tr_imu_to_velo=self.Tr_imu_to_velo)
        return calib


# HDL-64E: 64 beams from +2 deg to -24.8 deg (denser near the horizon, as the real sensor).
HDL64_ELEVATIONS = np.deg2rad(np.concatenate([np.linspace(2.0, -8.33, 32), np.linspace(-8.83, -24.8, 32)]))
# HDL-32E (nuScenes LIDAR_TOP): 32 beams from +10.67 deg to -30.67 deg.
HDL32_ELEVATIONS = np.deg2rad(np.linspace(10.67, -30.67, 32))
