"""KITTI raw data for self-supervised depth: calibration, split files, LiDAR depth and a dataset.

Layout (as downloaded from the KITTI raw page; the depth ground truth as in the KITTI depth benchmark)::

    data_root/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    data_root/<date>/<drive>/image_02/data/<frame:010d>.png          left colour camera
    data_root/<date>/<drive>/image_03/data/<frame:010d>.png          right colour camera
    data_root/<date>/<drive>/velodyne_points/data/<frame:010d>.bin   float32 (N, 4)
    depth_root/<drive>/proj_depth/groundtruth/image_0{2,3}/<frame:010d>.png

A split file (Eigen, Zhou, ...) lists one frame per line as ``<date>/<drive> <frame> <l|r>``.
"""
import os.path as osp
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset

from perception.fileio import read_raw_calib_file
from perception.fileio.depth import read_depth_png
from perception.registry import DATASETS
from perception.structures import cam2img_to_4x4

SIDE_TO_CAM = {'l': 2, 'r': 3}


def _entry(calib: Dict[str, np.ndarray], path: str, key: str, size: int) -> np.ndarray:
    if key not in calib:
        raise KeyError(f'{path}: missing entry {key}')
    if calib[key].size != size:
        raise ValueError(f'{path}: {key} has {calib[key].size} values, expected {size}')
    return calib[key]


class KittiRawCalib(NamedTuple):
    """Calibration of one recording day, as used for depth in the rectified colour cameras 2 and 3.

    Attributes:
        P_rect: {2: (3, 4), 3: (3, 4)} projections from rectified camera-0 coordinates to the pixels of
            camera 2 and 3.
        R_rect: (4, 4) rectifying rotation of camera 0 (``R_rect_00``), homogeneous.
        velo_to_cam: (4, 4) velodyne to unrectified camera 0 (``R``, ``T`` of calib_velo_to_cam.txt).
        image_size: (H, W) of the rectified images.
        baseline: distance between the optical centres of cameras 2 and 3 in metres (about 0.54).
    """
    P_rect: Dict[int, np.ndarray]
    R_rect: np.ndarray
    velo_to_cam: np.ndarray
    image_size: Tuple[int, int]
    baseline: float

    def intrinsics(self, cam: int) -> np.ndarray:
        """(3, 3) pinhole intrinsics of rectified camera ``cam`` in pixels."""
        return self.P_rect[cam][:, :3].copy()

    def velo_to_image(self, cam: int) -> np.ndarray:
        """(3, 4) projection of homogeneous velodyne points to camera ``cam``: pixel = P[:2] / P[2]."""
        return self.P_rect[cam] @ self.R_rect @ self.velo_to_cam


def load_kitti_raw_calib(calib_dir: str) -> KittiRawCalib:
    """Read ``calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt`` of a date folder."""
    cam_path = osp.join(calib_dir, 'calib_cam_to_cam.txt')
    velo_path = osp.join(calib_dir, 'calib_velo_to_cam.txt')
    cam2cam, velo2cam = read_raw_calib_file(cam_path), read_raw_calib_file(velo_path)
    P_rect = {cam: _entry(cam2cam, cam_path, f'P_rect_0{cam}', 12).reshape(3, 4) for cam in (2, 3)}
    R_rect = np.eye(4)
    R_rect[:3, :3] = _entry(cam2cam, cam_path, 'R_rect_00', 9).reshape(3, 3)
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3] = _entry(velo2cam, velo_path, 'R', 9).reshape(3, 3)
    velo_to_cam[:3, 3] = _entry(velo2cam, velo_path, 'T', 3)
    width, height = _entry(cam2cam, cam_path, 'S_rect_02', 2).astype(int)
    # P_rect_0x[0, 3] = -fx * (x position of camera x in the rectified camera-0 frame).
    centre = {cam: -P[0, 3] / P[0, 0] for cam, P in P_rect.items()}
    return KittiRawCalib(P_rect, R_rect, velo_to_cam, (int(height), int(width)),
                         float(centre[3] - centre[2]))


def load_velodyne_points(path: str) -> np.ndarray:
    """(N, 4) float32 velodyne scan: x forward, y left, z up in metres, and reflectance."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'velodyne scan {path} does not exist')
    points = np.fromfile(path, dtype=np.float32)
    if points.size % 4:
        raise ValueError(
            f'{path}: {points.size} float32 values, not a multiple of 4 (x, y, z, reflectance)')
    return points.reshape(-1, 4)


def project_points_to_depth(points: np.ndarray, velo_to_image: np.ndarray,
                            image_size: Tuple[int, int]) -> np.ndarray:
    """Sparse depth map of a velodyne scan, as monodepth2 builds its ground truth.

    Points behind the sensor (x < 0) are dropped; the rest are projected, rounded to a pixel with the
    one-pixel offset of KITTI's Matlab tools, and where several points fall in one pixel the nearest is
    kept.

    Args:
        points: (N, >=3) velodyne points in metres.
        velo_to_image: (3, 4) projection, e.g. :meth:`KittiRawCalib.velo_to_image`.
        image_size: (H, W).

    Returns:
        (H, W) float32 depth (z in the rectified camera) in metres, 0 where no point falls.
    """
    height, width = image_size
    xyz = points[points[:, 0] >= 0, :3].astype(np.float64)
    proj = np.concatenate([xyz, np.ones((len(xyz), 1))], axis=1) @ velo_to_image.T
    depth = proj[:, 2]
    u = np.round(proj[:, 0] / depth).astype(np.int64) - 1
    v = np.round(proj[:, 1] / depth).astype(np.int64) - 1
    keep = (u >= 0) & (v >= 0) & (u < width) & (v < height) & (depth > 0)
    u, v, depth = u[keep], v[keep], depth[keep]
    # Writing the points from far to near leaves the nearest one in each pixel.
    order = np.argsort(-depth, kind='stable')
    depth_map = np.zeros((height, width), dtype=np.float32)
    depth_map[v[order], u[order]] = depth[order]
    return depth_map


class SplitEntry(NamedTuple):
    """One line of a split file: ``folder`` is ``<date>/<drive>``, ``side`` is ``'l'`` or ``'r'``."""
    folder: str
    frame: int
    side: str


def read_split_file(path: str) -> List[SplitEntry]:
    """Parse an Eigen/Zhou-style split file of ``<date>/<drive> <frame> <l|r>`` lines."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'split file {path} does not exist')
    entries = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3 or fields[2] not in SIDE_TO_CAM or not fields[1].isdigit() \
                    or fields[0].count('/') != 1:
                raise ValueError(f'{path}:{lineno}: expected "<date>/<drive> <frame> <l|r>", '
                                 f'got {line.strip()!r}')
            entries.append(SplitEntry(fields[0], int(fields[1]), fields[2]))
    return entries


@DATASETS.register_module()
class KittiRawDepthDataset(BaseDataset):
    """KITTI raw frames for self-supervised depth, with stereo partners, temporal neighbours and depth.

    Each sample (before the pipeline) holds:

    - ``img_path``: the image of the split line's camera (``l``: image_02, ``r``: image_03);
    - ``stereo_img_path``: the same frame from the other camera (when ``with_stereo``);
    - ``neighbour_img_paths``: {offset: path} of frames ``frame + offset`` of the same camera;
    - ``intrinsics`` (3, 3) and ``cam2img`` (4, 4, ``[[K, 0], [0, 1]]``) in pixels of the full image;
    - ``baseline``: stereo baseline in metres, and ``cam2stereo`` (4, 4): the rigid transform from this
      camera to its stereo partner (a translation of -baseline along x for the left camera, +baseline
      for the right);
    - ``lidar_path``, ``height``, ``width``, ``folder``, ``frame``, ``side``, ``cam``;
    - ``gt_depth`` (H, W) float32 metres, 0 = no data (when ``depth_source`` is set), from the velodyne
      scan projected as monodepth2 does (``'velodyne'``) or from the KITTI depth PNG (``'png'``).

    Every referenced file is checked when the split is loaded, so a missing neighbour or ground truth
    fails early and names the split line.

    Args:
        ann_file: split file, relative to ``data_root`` unless absolute.
        data_root: the KITTI raw root (holding the date folders).
        frame_offsets: temporal neighbours to list, e.g. ``(-1, 1)``.
        with_stereo: list the other camera's image.
        depth_source: ``None``, ``'velodyne'`` or ``'png'``.
        depth_root: KITTI depth root(s) holding ``<drive>/proj_depth/groundtruth`` (the ``train`` and
            ``val`` folders of the benchmark); by default the drive folders of ``data_root``.
        img_suffix: ``'.png'``, or ``'.jpg'`` for the jpeg copies many projects train on.
    """

    METAINFO = dict(dataset='kitti_raw')

    def __init__(self,
                 ann_file: str,
                 data_root: str,
                 frame_offsets: Sequence[int] = (),
                 with_stereo: bool = True,
                 depth_source: Optional[str] = None,
                 depth_root: Union[str, Sequence[str], None] = None,
                 img_suffix: str = '.png',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False,
                 **kwargs) -> None:
        if depth_source not in (None, 'velodyne', 'png'):
            raise ValueError(f'depth_source must be None, "velodyne" or "png", got {depth_source!r}')
        if 0 in frame_offsets:
            raise ValueError('frame_offsets lists neighbours only: 0 is the frame itself')
        self.frame_offsets = tuple(int(o) for o in frame_offsets)
        self.with_stereo = with_stereo
        self.depth_source = depth_source
        self.depth_roots = [depth_root] if isinstance(depth_root, str) else list(depth_root or [])
        self.img_suffix = img_suffix
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            pipeline=list(pipeline),
            test_mode=test_mode,
            **kwargs)

    def _image_path(self, folder: str, cam: int, frame: int) -> str:
        return osp.join(self.data_root, folder, f'image_0{cam}', 'data',
                        f'{frame:010d}{self.img_suffix}')

    def _depth_png_candidates(self, folder: str, cam: int, frame: int) -> List[str]:
        drive = osp.basename(folder)
        roots = self.depth_roots or [osp.join(self.data_root, osp.dirname(folder))]
        return [
            osp.join(root, drive, 'proj_depth', 'groundtruth', f'image_0{cam}', f'{frame:010d}.png')
            for root in roots
        ]

    def load_data_list(self) -> List[dict]:
        calibs: Dict[str, KittiRawCalib] = {}
        data_list = []
        for lineno, (folder, frame, side) in enumerate(read_split_file(self.ann_file), 1):
            where = f'{self.ann_file} (line {lineno}: {folder} {frame} {side})'
            date = osp.dirname(folder)
            if date not in calibs:
                calibs[date] = load_kitti_raw_calib(osp.join(self.data_root, date))
            calib = calibs[date]
            cam = SIDE_TO_CAM[side]
            other = SIDE_TO_CAM['r' if side == 'l' else 'l']
            K = calib.intrinsics(cam)
            cam2img = cam2img_to_4x4(K)
            cam2stereo = np.eye(4)
            cam2stereo[0, 3] = -calib.baseline if side == 'l' else calib.baseline
            info = dict(
                folder=folder,
                frame=frame,
                side=side,
                cam=cam,
                img_path=self._image_path(folder, cam, frame),
                neighbour_img_paths={
                    o: self._image_path(folder, cam, frame + o)
                    for o in self.frame_offsets
                },
                lidar_path=osp.join(self.data_root, folder, 'velodyne_points', 'data',
                                    f'{frame:010d}.bin'),
                height=calib.image_size[0],
                width=calib.image_size[1],
                intrinsics=K.astype(np.float32),
                cam2img=cam2img.astype(np.float32),
                baseline=calib.baseline,
                cam2stereo=cam2stereo.astype(np.float32))
            required = [info['img_path'], *info['neighbour_img_paths'].values()]
            if self.with_stereo:
                info['stereo_img_path'] = self._image_path(folder, other, frame)
                required.append(info['stereo_img_path'])
            if self.depth_source == 'velodyne':
                info['velo_to_image'] = calib.velo_to_image(cam)
                required.append(info['lidar_path'])
            elif self.depth_source == 'png':
                candidates = self._depth_png_candidates(folder, cam, frame)
                found = [p for p in candidates if osp.isfile(p)]
                if not found:
                    raise FileNotFoundError(f'{where}: no depth ground truth among {candidates}')
                info['depth_path'] = found[0]
            for path in required:
                if not osp.isfile(path):
                    raise FileNotFoundError(f'{where}: {path} does not exist')
            data_list.append(info)
        return data_list

    def load_gt_depth(self, info: dict) -> np.ndarray:
        """(H, W) float32 ground-truth depth in metres of a sample, 0 = no data."""
        if self.depth_source == 'velodyne':
            points = load_velodyne_points(info['lidar_path'])
            return project_points_to_depth(points, info['velo_to_image'],
                                           (info['height'], info['width']))
        depth = read_depth_png(info['depth_path'])
        if depth.shape != (info['height'], info['width']):
            raise ValueError(f'{info["depth_path"]}: depth of shape {depth.shape}, the calibration says '
                             f'{(info["height"], info["width"])}')
        return depth

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        if self.depth_source is not None:
            info['gt_depth'] = self.load_gt_depth(info)
        return info
