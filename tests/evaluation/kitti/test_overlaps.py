"""Float64 overlaps of the KITTI evaluator against hand-computed values."""
import math

import numpy as np
import pytest

from perception.evaluation.kitti import bev_box_overlaps, box3d_overlaps, image_box_overlaps


def box(x=0., y=0., z=0., l=4., h=2., w=2., ry=0.):
    """(1, 7) camera box x, y, z, l, h, w, ry."""
    return np.array([[x, y, z, l, h, w, ry]])


def test_image_iou_exactly_on_threshold():
    iou = image_box_overlaps([[0, 0, 10, 10], [20, 20, 30, 30]], [[0, 0, 7, 10]])
    assert iou[0, 0] == 0.7  # bit-exact: the devkit needs > 0.7 to match
    assert iou[1, 0] == 0
    iof = image_box_overlaps([[0, 0, 7, 10]], [[0, 0, 10, 10]], mode='iof')
    assert iof[0, 0] == 1.0


def test_bev_and_3d_axis_aligned():
    a = box(l=4, w=2, y=1, h=2)
    b = box(x=1, l=4, w=2, y=1.5, h=2)
    # Footprints overlap 3 x 2 = 6 of 8 + 8 - 6.
    assert bev_box_overlaps(a, b)[0, 0] == pytest.approx(0.6, abs=1e-15)
    # Heights [-1, 1] and [-0.5, 1.5] overlap 1.5: 9 / (16 + 16 - 9).
    assert box3d_overlaps(a, b)[0, 0] == pytest.approx(9 / 23, abs=1e-15)
    assert box3d_overlaps(b, a, mode='iof')[0, 0] == pytest.approx(9 / 16, abs=1e-15)


def test_bev_exactly_on_threshold_far_from_origin():
    a = box(x=150.25, z=20.25, l=10, w=7)
    b = box(x=150.25, z=20.25, l=10, w=10)
    assert bev_box_overlaps(a, b)[0, 0] == 0.7
    assert bev_box_overlaps(b, a)[0, 0] == 0.7


def test_rotated_45_degrees():
    # A 2 x 2 square and the same square turned by 45 degrees meet in a regular octagon of area
    # 8 (sqrt(2) - 1), so IoU = 1 / sqrt(2).
    a = box(l=2, w=2)
    b = box(l=2, w=2, ry=math.pi / 4)
    assert bev_box_overlaps(a, b)[0, 0] == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    assert box3d_overlaps(a, b)[0, 0] == pytest.approx(1 / math.sqrt(2), abs=1e-12)


@pytest.mark.parametrize('ry', [0.0, 0.3, -1.2, math.pi / 2, 3.0])
def test_identical_rotated_boxes(ry):
    # mmdet3d's CUDA kernel returns 0 or 1/3 here (coincident edges); the devkit returns 1.
    a = box(x=3.2, y=1.7, z=25.1, l=3.9, h=1.6, w=1.7, ry=ry)
    assert bev_box_overlaps(a, a)[0, 0] == pytest.approx(1, abs=1e-12)
    assert box3d_overlaps(a, a)[0, 0] == pytest.approx(1, abs=1e-12)


def test_yaw_flip_and_wrap():
    a = box(x=-2, z=30, l=4.2, w=1.8, ry=3.14)
    assert bev_box_overlaps(a, box(x=-2, z=30, l=4.2, w=1.8, ry=3.14 - math.pi))[0, 0] == \
        pytest.approx(1, abs=1e-12)
    # 3.14 and -3.14 differ by 2 pi - 6.28 = 0.0032 rad: almost the same box.
    wrapped = bev_box_overlaps(a, box(x=-2, z=30, l=4.2, w=1.8, ry=-3.14))[0, 0]
    assert 0.995 < wrapped < 1


def test_disjoint_and_touching():
    a = box(l=2, w=2)
    assert bev_box_overlaps(a, box(x=5, l=2, w=2, ry=0.7))[0, 0] == 0
    assert bev_box_overlaps(a, box(x=2, l=2, w=2))[0, 0] == 0
    # Footprints overlap but heights do not.
    assert box3d_overlaps(box(y=0, h=1), box(y=-1.5, h=1))[0, 0] == 0


def test_rotated_against_monte_carlo():
    rng = np.random.default_rng(0)
    a = box(x=0.3, z=0.2, l=4, w=1.6, ry=0.4)
    b = box(x=-0.5, z=0.6, l=3.5, w=2.2, ry=-0.9)
    points = rng.uniform(-4, 4, size=(400000, 2))

    def inside(bx):
        x, z, l, w, ry = bx[0, 0], bx[0, 2], bx[0, 3], bx[0, 5], bx[0, 6]
        dx, dz = points[:, 0] - x, points[:, 1] - z
        # Inverse of the devkit's corner rotation (x + cos a + sin b, z - sin a + cos b).
        u = math.cos(ry) * dx - math.sin(ry) * dz
        v = math.sin(ry) * dx + math.cos(ry) * dz
        return (np.abs(u) <= l / 2) & (np.abs(v) <= w / 2)

    ia, ib = inside(a), inside(b)
    estimate = (ia & ib).sum() / (ia | ib).sum()
    assert bev_box_overlaps(a, b)[0, 0] == pytest.approx(estimate, abs=5e-3)
    assert 0.2 < estimate < 0.8


def test_shapes_and_errors():
    assert bev_box_overlaps(np.zeros((0, 7)), box()).shape == (0, 1)
    assert box3d_overlaps(np.repeat(box(), 3, axis=0), np.repeat(box(), 2, axis=0)).shape == (3, 2)
    with pytest.raises(ValueError, match=r'shape \(N, 7\)'):
        bev_box_overlaps(np.zeros((2, 5)), box())
    with pytest.raises(ValueError, match="mode must be 'iou' or 'iof'"):
        bev_box_overlaps(box(), box(), mode='giou')
