"""A KITTI object folder rebuilt from mmdet3d's real KITTI fixtures (``tests/data/data``).

mmdet3d's fixtures hold no label or calib text files, so they are written from what the fixtures hold:
frame 000000 (mmdet3d tests, 1 Pedestrian) and frame 000008 (mmdet3d demo, 6 Cars and 4 DontCare,
full-quality image and frustum scan, with the calibration of the 2011_09_26 drive stored at full precision
in the 0.x mono3d infos).
"""
from pathlib import Path

import numpy as np
from mmengine.fileio import load

from perception.fileio import write_calib_file, write_label_file

# mmdet3d's KITTI label ids (-1: DontCare)
LABEL_NAMES = ('Pedestrian', 'Cyclist', 'Car', 'Van', 'Truck', 'Person_sitting', 'Tram', 'Misc')


def _label_rows(instances: list) -> dict:
    """The label-file columns of a 1.x info's instances."""
    boxes = np.array([inst['bbox_3d'] for inst in instances])
    return dict(
        name=np.array(['DontCare' if inst['bbox_label'] == -1 else LABEL_NAMES[inst['bbox_label']]
                       for inst in instances]),
        truncated=np.array([inst['truncated'] for inst in instances]),
        occluded=np.array([inst['occluded'] for inst in instances]),
        alpha=np.array([inst['alpha'] for inst in instances]),
        bbox=np.array([inst['bbox'] for inst in instances]),
        dimensions=boxes[:, [4, 5, 3]],  # l, h, w -> h, w, l (file order)
        location=boxes[:, :3],
        rotation_y=boxes[:, 6])


def _info_calib(info: dict) -> dict:
    """The calibration of a 1.x info (as stored by mmdet3d: float32-rounded rotations)."""
    calib = {f'P{i}': np.array(info['images'][f'CAM{i}']['cam2img'])[:3] for i in range(4)}
    calib['R0_rect'] = np.array(info['images']['R0_rect'])[:3, :3]
    calib['Tr_velo_to_cam'] = np.array(info['lidar_points']['Tr_velo_to_cam'])[:3]
    calib['Tr_imu_to_velo'] = np.array(info['lidar_points']['Tr_imu_to_velo'])[:3]
    return calib


def make_kitti_root(data_dir: Path, root: Path) -> Path:
    """A KITTI layout in ``root`` with frame 0 in ImageSets/train, frame 8 in val and (without labels) in test.

    Args:
        data_dir: the test data folder (holding ``data/mmdet3d_tests`` and ``data/mmdet3d_demo``).
        root: the folder to write (images and the frame-8 scan are symbolic links into ``data_dir``).
    """
    tests, demo = data_dir / 'data/mmdet3d_tests/kitti', data_dir / 'data/mmdet3d_demo/kitti'
    info0 = load(tests / 'kitti_infos_train.pkl')['data_list'][0]
    info8 = load(demo / '000008.pkl')['data_list'][0]
    raw_calib = load(tests / 'kitti_infos_mono3d.pkl')[0]['calib']  # = calib of 000008 at full precision
    for split in ('training', 'testing'):
        for folder in ('image_2', 'calib', 'velodyne', 'label_2'):
            (root / split / folder).mkdir(parents=True)
    (root / 'ImageSets').mkdir()
    for split, ids in dict(train=[0], val=[8], test=[8]).items():
        (root / 'ImageSets' / f'{split}.txt').write_text(''.join(f'{i:06d}\n' for i in ids))

    # Frame 0: mmdet3d's 800-point scan misses the pedestrian; its 377 points are in the GT database, box-centred.
    (root / 'training/image_2/000000.png').symlink_to(tests / 'training/image_2/000000.png')
    db = load(tests / 'kitti_dbinfos_train.pkl')['Pedestrian'][0]
    ped = np.fromfile(tests / db['path'], dtype=np.float32).reshape(-1, 4)
    ped[:, :3] += db['box3d_lidar'][:3]
    scan = np.fromfile(tests / 'training/velodyne/000000.bin', dtype=np.float32).reshape(-1, 4)
    np.concatenate([scan, ped]).astype(np.float32).tofile(root / 'training/velodyne/000000.bin')
    write_calib_file(root / 'training/calib/000000.txt', _info_calib(info0))
    write_label_file(root / 'training/label_2/000000.txt', _label_rows(info0['instances']))

    calib8 = {key: raw_calib[key][:3, :3] if key == 'R0_rect' else raw_calib[key][:3] for key in raw_calib}
    for split in ('training', 'testing'):
        (root / split / 'image_2/000008.png').symlink_to(demo / '000008.png')
        (root / split / 'velodyne/000008.bin').symlink_to(demo / '000008.bin')
        write_calib_file(root / split / 'calib/000008.txt', calib8)
    write_label_file(root / 'training/label_2/000008.txt', _label_rows(info8['instances']))
    return root
