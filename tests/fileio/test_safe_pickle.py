"""Info and result pickles load through an allow-list: a planted payload never runs."""
import os
import pickle
from collections import OrderedDict

import mmengine
import numpy as np
import pytest

from perception.fileio import InvalidInputError, UnsafePickleError, load_pickle


class _Payload:
    """What an attacker plants: unpickling it creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").close()', )


def _info():
    """The shape of a converter's info file: builtins, numpy arrays, dtypes and scalars."""
    return dict(
        metainfo=dict(categories={'Car': 0, 'DontCare': -1}, dataset='kitti', info_version='1.1'),
        data_list=[
            dict(sample_idx=7, images=dict(CAM2=dict(img_path='000007.png', cam2img=np.eye(4).tolist(),
                                                     height=375, width=1242)),
                 instances=[dict(bbox=[1., 2., 3., 4.], bbox_label=0, depth=np.float32(7.5),
                                 num_lidar_pts=np.int64(12))],
                 plane=np.arange(4, dtype=np.float64), mask=np.array([True, False]), dtype=np.dtype('float32'),
                 extra=(OrderedDict(a=1), {1, 2}, frozenset({3}), b'\x00raw', complex(1, 2)))
        ])


def _equal(a, b):
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype
                and np.array_equal(a, b, equal_nan=a.dtype.kind in 'fc'))
    if isinstance(a, dict):
        return type(a) is type(b) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and (a == b or a != a and b != b)  # NaN velocities of nuScenes infos


@pytest.mark.parametrize('protocol', [2, 4, 5])
def test_converter_types_load_unchanged(tmp_path, protocol):
    path = tmp_path / 'kitti_infos_val.pkl'
    path.write_bytes(pickle.dumps(_info(), protocol=protocol))
    assert _equal(load_pickle(path), _info())
    assert _equal(mmengine.load(str(path)), _info())  # what BaseDataset reads ann_file with


def test_every_info_file_of_the_test_data_loads(shared_dir):
    paths = sorted((shared_dir / 'data').rglob('*.pkl'))
    assert paths
    for path in paths:
        with open(path, 'rb') as f:
            assert _equal(load_pickle(path), pickle.load(f)), path


def test_planted_payload_never_runs(tmp_path):
    """Issue 21 defect 1: a payload in a val info file ran during tools/test.py."""
    marker = tmp_path / 'pwned'
    info = _info()
    info['data_list'][0]['instances'][0]['depth'] = _Payload(marker)
    path = tmp_path / 'kitti_infos_val.pkl'
    path.write_bytes(pickle.dumps(info, protocol=2))
    with pytest.raises(UnsafePickleError, match=f'{path}.*builtins.exec'):
        load_pickle(path)
    with pytest.raises(UnsafePickleError, match=f'{path}.*builtins.exec'):
        mmengine.load(str(path))
    from perception.datasets import KittiMono3DDataset
    with pytest.raises(UnsafePickleError, match='kitti_infos_val.pkl.*builtins.exec'):
        KittiMono3DDataset(data_root=str(tmp_path), ann_file='kitti_infos_val.pkl', pipeline=[])
    assert not marker.exists()
    assert issubclass(UnsafePickleError, InvalidInputError) and issubclass(UnsafePickleError, pickle.UnpicklingError)


@pytest.mark.parametrize('data,message', [(b'', 'empty file'), (pickle.dumps(_info())[:-40], 'truncated'),
                                          (b'Car 0.00 0 1.0\n', 'not a readable pickle')])
def test_unreadable_files_name_the_file(tmp_path, data, message):
    path = tmp_path / 'kitti_infos_train.pkl'
    path.write_bytes(data)
    with pytest.raises(InvalidInputError, match=f'{path}: .*{message}'):
        load_pickle(path)
    with pytest.raises(FileNotFoundError):
        load_pickle(tmp_path / 'missing.pkl')
    assert os.listdir(tmp_path) == ['kitti_infos_train.pkl']
