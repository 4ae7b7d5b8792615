import numpy as np
import pytest
import torch

from perception.structures import (cam2img_to_4x4, crop_scale_matrix, flip_cam2img, flip_matrix, project_points,
                                   projected_boxes_2d, resize_matrix, transform_boxes_2d, transform_cam2img,
                                   transform_points_2d, unproject_points)

# KITTI frame 000008, camera 2 (P2 with its baseline column), from mmdet3d's demo info file.
P2 = np.array([[721.5377, 0.0, 609.5593, 44.85728],
               [0.0, 721.5377, 172.854, 0.2163791],
               [0.0, 0.0, 1.0, 0.002745884],
               [0.0, 0.0, 0.0, 1.0]])
WIDTH, HEIGHT = 1242, 375
POINTS = np.array([[-2.7, 1.74, 3.68], [1.07, 0.815, 14.44], [8.48, -1.0, 19.96], [0.0, 0.0, 60.0]])


def homogeneous_projection(points, cam2img):
    uvw = (cam2img_to_4x4(cam2img) @ np.concatenate([points, np.ones((len(points), 1))], 1).T).T
    return uvw[:, :2] / uvw[:, 2:3], uvw[:, 2]


@pytest.mark.parametrize('shape', [(3, 3), (3, 4), (4, 4)])
def test_project_matches_homogeneous_and_unproject_inverts(shape):
    cam2img = P2[:shape[0], :shape[1]]
    uv, depth = homogeneous_projection(POINTS, cam2img)
    uvd = project_points(POINTS, cam2img, with_depth=True)
    np.testing.assert_allclose(uvd[:, :2], uv, rtol=0, atol=1e-9)
    np.testing.assert_allclose(uvd[:, 2], depth, rtol=0, atol=1e-12)
    np.testing.assert_allclose(unproject_points(uvd, cam2img), POINTS, rtol=0, atol=1e-9)


def test_torch_matches_numpy_and_keeps_dtype():
    points, cam2img = torch.from_numpy(POINTS).float(), torch.from_numpy(P2).float()
    uvd = project_points(points, cam2img, with_depth=True)
    assert uvd.dtype == torch.float32 and uvd.shape == (4, 3)
    np.testing.assert_allclose(uvd.numpy(), project_points(POINTS, P2, with_depth=True), rtol=1e-5)
    np.testing.assert_allclose(unproject_points(uvd, cam2img).numpy(), POINTS, atol=1e-3)
    assert project_points(points[None], cam2img).shape == (1, 4, 2)


def test_bad_cam2img_shape_raises():
    with pytest.raises(ValueError, match='3x3, 3x4 or 4x4'):
        project_points(POINTS, P2[:2])


def test_flip_mirrors_pixels_and_the_baseline_term():
    flipped = flip_cam2img(P2, WIDTH)
    mirrored = POINTS * np.array([-1., 1., 1.])
    expected = project_points(POINTS, P2, with_depth=True)
    expected[:, 0] = WIDTH - 1 - expected[:, 0]
    np.testing.assert_allclose(project_points(mirrored, flipped, with_depth=True), expected, atol=1e-9)
    assert flipped[0, 2] == pytest.approx(WIDTH - 1 - P2[0, 2])
    assert flipped[0, 3] == pytest.approx((WIDTH - 1) * P2[2, 3] - P2[0, 3])
    np.testing.assert_allclose(flip_cam2img(flipped, WIDTH), P2, atol=1e-12)


def test_flip_matrix_maps_first_pixel_to_last():
    np.testing.assert_allclose(transform_points_2d(np.array([[0., 5.], [WIDTH - 1., 7.]]), flip_matrix(WIDTH)),
                               [[WIDTH - 1., 5.], [0., 7.]])


def test_transform_cam2img_commutes_with_projection():
    matrix = np.array([[1.3, 0., -20.], [0., 1.3, 15.], [0., 0., 1.]])
    for cam2img in (P2, P2[:3], P2[:3, :3]):
        new = transform_cam2img(cam2img, matrix)
        assert new.shape == cam2img.shape
        np.testing.assert_allclose(project_points(POINTS, new),
                                   transform_points_2d(project_points(POINTS, cam2img), matrix), atol=1e-9)


def test_resize_matrix_follows_cv2_pixel_centres():
    # cv2.resize samples new pixel u' at old u = (u' + 0.5) / s - 0.5
    matrix = resize_matrix(0.5, 2.0)
    np.testing.assert_allclose(transform_points_2d(np.array([[0.5, -0.25]]), matrix), [[0., 0.]], atol=1e-12)
    np.testing.assert_allclose(transform_points_2d(np.array([[2.5, 1.25]]), matrix), [[1., 3.]], atol=1e-12)


def test_crop_scale_is_identity_for_the_full_image_and_keeps_aspect():
    np.testing.assert_allclose(crop_scale_matrix((WIDTH / 2, HEIGHT / 2), (WIDTH, HEIGHT), (WIDTH, HEIGHT)),
                               np.eye(3), atol=1e-12)
    matrix = crop_scale_matrix((600., 200.), (1000., 300.), (1280, 384))
    assert matrix[0, 0] == matrix[1, 1] == pytest.approx(1.28)
    # the crop centre (edge coordinates) lands on the output centre
    np.testing.assert_allclose(transform_points_2d(np.array([[599.5, 199.5]]), matrix), [[639.5, 191.5]],
                               atol=1e-9)


def test_transform_boxes_2d_under_flip_swaps_edges():
    boxes = np.array([[0., 192.37, 402.31, 374.], [937.29, 197.39, 1241., 374.]])
    flipped = transform_boxes_2d(boxes, flip_matrix(WIDTH))
    np.testing.assert_allclose(flipped, [[838.69, 192.37, 1241., 374.], [0., 197.39, 303.71, 374.]], atol=1e-9)
    torch_flipped = transform_boxes_2d(torch.from_numpy(boxes), torch.from_numpy(flip_matrix(WIDTH)))
    np.testing.assert_allclose(torch_flipped.numpy(), flipped)


def test_projected_boxes_2d_of_corners_numpy_and_torch():
    # an axis-aligned box: x in {-1, 3}, y in {0, 1.5}, z in {19, 21}, with K = (700, 700, 600, 180)
    corners = np.array([[[x, y, z] for x in (-1., 3.) for y in (0., 1.5) for z in (19., 21.)]])
    cam2img = np.array([[700., 0., 600.], [0., 700., 180.], [0., 0., 1.]])
    expected = [[600 - 700 / 19, 180, 600 + 2100 / 19, 180 + 1050 / 19]]
    np.testing.assert_allclose(projected_boxes_2d(corners, cam2img), expected, rtol=0, atol=1e-9)
    boxes = projected_boxes_2d(torch.from_numpy(corners), torch.from_numpy(cam2img))
    assert isinstance(boxes, torch.Tensor) and boxes.dtype == torch.float64
    np.testing.assert_allclose(boxes.numpy(), expected, rtol=0, atol=1e-9)
    assert projected_boxes_2d(np.zeros((0, 8, 3)), P2).shape == (0, 4)
