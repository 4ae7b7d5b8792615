import numpy as np

from perception.visualization import (bev_box_corners, camera_box_corners, camera_boxes_to_bev, colorize_depth,
                                      draw_bev, draw_boxes2d, draw_camera_boxes3d)

K = np.array([[700.0, 0, 320], [0, 700.0, 120], [0, 0, 1]])


def test_projected_box_is_drawn_where_its_corners_project():
    image = np.zeros((240, 640, 3), np.uint8)
    box = np.array([[0.0, 1.0, 10.0, 4.0, 1.5, 1.8, 0.3]])  # x, y, z, l, h, w, ry (bottom centre)
    out = draw_camera_boxes3d(image, box, K, labels=['Car'], thickness=1)
    assert (image == 0).all(), 'drawing must not touch the input'
    corners = camera_box_corners(box)[0]
    uv = corners @ K.T
    uv = uv[:, :2] / uv[:, 2:]
    drawn = out.any(-1)
    for u, v in np.round(uv).astype(int):
        assert drawn[max(v - 1, 0):v + 2, max(u - 1, 0):u + 2].any()
    x0, y0 = np.floor(uv.min(0)).astype(int) - 2
    x1, y1 = np.ceil(uv.max(0)).astype(int) + 2
    outside = drawn.copy()
    outside[max(y0, 0):y1, max(x0, 0):x1] = False
    assert not outside.any()


def test_boxes_behind_the_camera_are_clipped_not_exploded():
    image = np.zeros((240, 640, 3), np.uint8)
    behind = draw_camera_boxes3d(image, np.array([[0.0, 1.0, -10.0, 4.0, 1.5, 1.8, 0.0]]), K)
    assert not behind.any()
    # A box around the camera (from z = -2 to 2) is cut at the near plane and still drawn.
    around = draw_camera_boxes3d(image, np.array([[1.5, 1.0, 0.0, 1.8, 1.5, 4.0, 0.0]]), K)
    assert around.any()


def test_2d_boxes_and_bev_geometry():
    out = draw_boxes2d(np.zeros((50, 50, 3), np.uint8), np.array([[10, 10, 30, 40]]), colors=[(0, 0, 255)])
    assert (out[10, 10:31, 2] == 255).all() and out[20, 20].sum() == 0
    # A car 20 m ahead, 4 m long: forward is up, 0.1 m per pixel, x from 0 to 40 m.
    bev = draw_bev(np.array([[20.0, 0.0, 4.0, 2.0, 0.0]]), x_range=(0, 40), y_range=(-20, 20), thickness=1)
    assert bev.shape == (400, 400, 3)
    rows = np.nonzero(bev[:, 200].any(-1))[0]
    assert rows.min() >= 178 and rows.max() <= 222 and rows.max() - rows.min() >= 38
    turned = bev_box_corners(np.array([[0.0, 0.0, 4.0, 2.0, np.pi / 2]]))[0]
    assert np.allclose(np.ptp(turned, axis=0), [2.0, 4.0])


def test_camera_to_bev_matches_mmdet3d_lidar_conversion():
    from mmdet3d.structures import Box3DMode, CameraInstance3DBoxes
    boxes = np.array([[2.0, 1.6, 15.0, 4.0, 1.5, 1.7, 0.4], [-3.0, 1.7, 30.0, 0.8, 1.8, 0.6, -2.0]])
    lidar = CameraInstance3DBoxes(boxes).convert_to(Box3DMode.LIDAR).tensor.numpy()
    bev = camera_boxes_to_bev(boxes)
    assert np.allclose(bev[:, :4], lidar[:, [0, 1, 3, 4]], atol=1e-5)
    assert np.allclose(np.cos(bev[:, 4] - lidar[:, 6]), 1, atol=1e-6)


def test_depth_colours_get_brighter_when_nearer_and_mark_missing_depth():
    depth = np.tile(np.linspace(2, 80, 100, dtype=np.float32), (10, 1))
    depth[:, :5] = 0
    out = colorize_depth(depth, invalid_color=(255, 0, 255))
    assert (out[:, :5] == [255, 0, 255]).all()
    brightness = out[0, 5:].astype(int).sum(-1)
    assert brightness[0] > brightness[-1] + 200 and (np.diff(brightness) <= 3).all()
    sparse = np.zeros((20, 20), np.float32)
    sparse[10, 10] = 5.0
    assert (colorize_depth(sparse, dilate=2) != 0).any(-1).sum() == 25
