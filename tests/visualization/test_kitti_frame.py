"""The drawn 3D boxes of the real KITTI frame 000008: where its labelled cars project with the original ``P2``."""
import numpy as np

from perception.visualization import box_edges_2d


def corners_by_hand(x, y, z, length, height, width, ry):
    """(8, 3) box corners as the KITTI devkit's ``computeBox3D`` writes them, and their (8, 3) signs along the
    box's length, height and width (+1 along length: the front face, which the box heads to)."""
    signs = np.array([[1, 0, 1], [1, 0, -1], [-1, 0, -1], [-1, 0, 1], [1, 1, 1], [1, 1, -1], [-1, 1, -1],
                      [-1, 1, 1]])
    dx, dy, dz = signs[:, 0] * length / 2, -signs[:, 1] * height, signs[:, 2] * width / 2
    corners = np.stack([x + np.cos(ry) * dx + np.sin(ry) * dz, y + dy, z - np.sin(ry) * dx + np.cos(ry) * dz], 1)
    return corners, signs


def project_by_hand(P, points):
    uvw = np.concatenate([points, np.ones((len(points), 1))], 1) @ P[:3].T
    return uvw[:, :2] / uvw[:, 2:]


def test_drawn_segments_join_the_hand_projected_corners(kitti_000008):
    _, P2, cars = kitti_000008
    segments = box_edges_2d(np.array([car['bbox_3d'] for car in cars]), P2)
    assert len(segments) == 6
    for car, drawn in zip(cars, segments):
        corners, signs = corners_by_hand(*car['bbox_3d'])
        assert (corners[:, 2] > 1.).all(), 'every corner in front of the camera: no clipping to account for'
        expected = project_by_hand(P2, corners)
        # each drawn end is one of the 8 projected corners, to float32 rounding of the boxes
        dist = np.linalg.norm(drawn.reshape(-1, 1, 2) - expected[None], axis=-1)
        assert dist.min(1).max() < 1e-2
        ends = dist.argmin(1).reshape(-1, 2)
        assert ends.shape == (14, 2)
        differ = (signs[ends[:, 0]] != signs[ends[:, 1]]).sum(1)
        # 12 edges, each joining corners that differ along one axis, all of them ...
        assert (differ[:12] == 1).all()
        assert len({frozenset(edge) for edge in ends[:12].tolist()}) == 12
        # ... and the cross on the front face
        assert (differ[12:] == 2).all() and (signs[ends[12:], 0] == 1).all()


def test_projected_cars_fit_their_annotated_2d_boxes(kitti_000008):
    """An independent check of the matrix and the box convention: KITTI's annotators drew the 2D boxes on the
    image, and the projected 3D boxes of the untruncated cars span them to a few pixels."""
    _, P2, cars = kitti_000008
    untruncated = [car for car in cars if car['truncated'] == 0]
    assert len(untruncated) == 4
    for car, drawn in zip(untruncated, box_edges_2d(np.array([car['bbox_3d'] for car in untruncated]), P2)):
        ends = drawn.reshape(-1, 2)
        extent = np.concatenate([ends.min(0), ends.max(0)])
        np.testing.assert_allclose(extent, car['bbox'], atol=4.)
