import os
from pathlib import Path

import numpy as np
import pytest
from mmengine.fileio import load
from mmengine.registry import DefaultScope

# The real samples and oracle files the tests read (tests/data/README.md); PERCEPTION_SHARED names another
# folder of the same layout to read instead, such as the full ../shared.
SHARED = Path(os.environ.get('PERCEPTION_SHARED', Path(__file__).resolve().parent / 'data'))


@pytest.fixture(scope='session')
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f'the test data folder {SHARED} is missing (PERCEPTION_SHARED names it)')
    return SHARED


@pytest.fixture(scope='session')
def kitti_000008(shared_dir):
    """KITTI object frame 000008 (mmdet3d's demo frame): its image path, P2 as a (4, 4) float64 array and its
    6 cars, the instances of its 1.x info (bbox_3d, bbox, center_2d, depth, alpha, ...)."""
    folder = shared_dir / 'data/mmdet3d_demo/kitti'
    info = load(folder / '000008.pkl')['data_list'][0]
    cars = [inst for inst in info['instances'] if inst['bbox_label'] != -1]
    return str(folder / '000008.png'), np.asarray(info['images']['CAM2']['cam2img'], dtype=np.float64), cars


@pytest.fixture(scope='session', autouse=True)
def default_scope():
    """The registry scope of perception's configs, for every fixture and test (set here, not at import)."""
    with DefaultScope.overwrite_default_scope('perception'):
        yield
