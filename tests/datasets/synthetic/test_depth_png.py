import cv2
import numpy as np
import pytest

from perception.fileio.depth import read_depth_png, write_depth_png


def test_round_trip_keeps_depth_to_half_a_step_and_no_data(tmp_path):
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 120.0, size=(37, 53))
    depth[rng.random(depth.shape) < 0.3] = 0
    depth[0, 0], depth[0, 1] = np.nan, np.inf
    depth[1, 0] = 1e-3  # positive but below one step: must stay "valid"
    path = tmp_path / 'd.png'
    write_depth_png(path, depth)
    back = read_depth_png(path)
    valid = np.isfinite(depth) & (depth > 0)
    assert back.dtype == np.float32 and back.shape == depth.shape
    assert np.abs(back[valid] - depth[valid])[depth[valid] > 0.01].max() <= 0.5 / 256 + 1e-6
    assert (back[~valid] == 0).all() and (back[valid] > 0).all()
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    v, u = np.argwhere(valid & (depth > 1))[0]
    assert raw.dtype == np.uint16 and raw[v, u] == np.round(depth[v, u] * 256)


def test_rejects_depth_that_would_wrap_and_8bit_pngs(tmp_path):
    with pytest.raises(ValueError, match='exceeds'):
        write_depth_png(tmp_path / 'far.png', np.full((4, 4), 300.0))
    cv2.imwrite(str(tmp_path / 'gray.png'), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match='uint16'):
        read_depth_png(tmp_path / 'gray.png')
    with pytest.raises(FileNotFoundError):
        read_depth_png(tmp_path / 'missing.png')
