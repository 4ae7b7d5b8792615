"""MonoDETRBBoxCoder: the targets by hand, decoding back to the boxes, and the head's use of it."""
import math

import pytest
import torch

from perception.models.dense_heads import MonoDETRHead
from perception.models.losses import encode_heading
from perception.models.task_modules import MonoDETRBBoxCoder, boxes6d_to_xyxy
from perception.registry import TASK_UTILS
from perception.structures import resize_matrix
from perception.testing import TINY_CAM2IMG, TINY_IMG_SIZE, mono3d_sample

OBJECTS = [[-2., 1.6, 12., 3.9, 1.5, 1.6, 0.3, 2], [3., 1.6, 20., 0.8, 1.7, 0.6, 3.1, 0]]


def test_registered_and_the_heads_default():
    coder = TASK_UTILS.build(dict(type='MonoDETRBBoxCoder', num_heading_bins=8))
    assert isinstance(coder, MonoDETRBBoxCoder) and coder.num_heading_bins == 8
    assert isinstance(MonoDETRHead(embed_dims=8).bbox_coder, MonoDETRBBoxCoder)
    with pytest.raises(ValueError, match='heading bins'):
        MonoDETRHead(embed_dims=8, num_heading_bins=8)


def test_encode_by_hand():
    sample = mono3d_sample(OBJECTS, TINY_IMG_SIZE, TINY_CAM2IMG)
    gt = MonoDETRBBoxCoder().encode(sample.gt_instances_3d, sample.gt_instances, TINY_IMG_SIZE)
    assert type(gt).__name__ == 'InstanceData' and len(gt) == 2
    # pixel u normalises to (u + 0.5) / W: the image edges are 0 and 1
    centers = sample.gt_instances_3d.centers_2d
    torch.testing.assert_close(gt.centers_2d, (centers + 0.5) / torch.tensor([320., 96.]))
    pixel = sample.gt_instances.bboxes
    torch.testing.assert_close(gt.pixel_bboxes, pixel)
    torch.testing.assert_close(gt.bboxes, (pixel + 0.5) / torch.tensor([320., 96., 320., 96.]))
    torch.testing.assert_close(gt.lrtb[:, 0] * 320, centers[:, 0] - pixel[:, 0])
    torch.testing.assert_close(gt.lrtb[:, 3] * 96, pixel[:, 3] - centers[:, 1])
    torch.testing.assert_close(boxes6d_to_xyxy(torch.cat([gt.centers_2d, gt.lrtb], 1)), gt.bboxes)
    torch.testing.assert_close(gt.dims, torch.tensor([[3.9, 1.5, 1.6], [0.8, 1.7, 0.6]]))
    # alpha = ry - atan2(x, z), wrapped: the second one passes pi
    torch.testing.assert_close(gt.alphas, torch.tensor([0.3 + math.atan2(2, 12),
                                                        3.1 - math.atan2(3, 20)]))
    assert gt.alphas[1] < math.pi and gt.labels.tolist() == [2, 0]
    assert gt.depths.tolist() == pytest.approx([12., 20.])
    with pytest.raises(ValueError, match='2 3D objects but 1 2D boxes'):
        MonoDETRBBoxCoder().encode(sample.gt_instances_3d, sample.gt_instances[:1], TINY_IMG_SIZE)


def perfect_angles(alphas, num_bins=12):
    bins, residuals = encode_heading(alphas, num_bins)
    angles = torch.zeros(len(alphas), 2 * num_bins)
    angles[torch.arange(len(alphas)), bins] = 10.
    angles[torch.arange(len(alphas)), num_bins + bins] = residuals
    return angles


def test_decode_inverts_encode_and_maps_2d_boxes_to_the_original_image():
    coder = MonoDETRBBoxCoder()
    sample = mono3d_sample(OBJECTS, TINY_IMG_SIZE, TINY_CAM2IMG)
    gt = coder.encode(sample.gt_instances_3d, sample.gt_instances, TINY_IMG_SIZE)
    boxes = torch.cat([gt.centers_2d, gt.lrtb], 1)
    bboxes_3d, bboxes_2d = coder.decode(boxes, gt.depths, gt.dims, perfect_angles(gt.alphas),
                                        torch.from_numpy(TINY_CAM2IMG).float(), TINY_IMG_SIZE)
    torch.testing.assert_close(bboxes_3d.tensor, sample.gt_instances_3d.bboxes_3d.tensor, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(bboxes_2d, sample.gt_instances.bboxes, atol=1e-3, rtol=1e-5)
    # the input was the original image resized by 2: the 2D boxes come back in original pixels
    half = torch.from_numpy(resize_matrix(0.5, 0.5))
    _, original = coder.decode(boxes, gt.depths, gt.dims, perfect_angles(gt.alphas),
                               torch.from_numpy(TINY_CAM2IMG).float(), TINY_IMG_SIZE, img_aug_matrix=half)
    torch.testing.assert_close(original, (sample.gt_instances.bboxes + 0.5) * 2 - 0.5, atol=2e-3, rtol=1e-5)
    # untrained sizes are clamped positive
    small, _ = coder.decode(boxes, gt.depths, -gt.dims, perfect_angles(gt.alphas),
                            torch.from_numpy(TINY_CAM2IMG).float(), TINY_IMG_SIZE)
    assert (small.dims == 1e-2).all()


def test_depth_and_box_height_decoding():
    coder = MonoDETRBBoxCoder()
    assert coder.decode_depth(torch.tensor(0.)).item() == pytest.approx(1 / (0.5 + 1e-6) - 1)
    boxes = torch.tensor([[0.5, 0.5, 0.1, 0.1, 0.04, 0.06]])
    assert coder.box_heights(boxes, 300).item() == pytest.approx(30.)
    point = torch.tensor([[0., 95.]])
    torch.testing.assert_close(coder.denormalize(coder.normalize(point, TINY_IMG_SIZE), TINY_IMG_SIZE), point)


def test_decode_official_by_hand():
    """The official tester's decoding: fractions of the original image, the unadjusted P2 with its t_x, t_y,
    the yaw through the 2D box centre's ray, sizes as predicted."""
    coder = MonoDETRBBoxCoder(num_heading_bins=12)
    cam2img = torch.tensor([[500., 0., 480., 50.], [0., 500., 190., 10.], [0., 0., 1., 0.], [0., 0., 0., 1.]])
    boxes = torch.tensor([[0.5, 0.5, 0.1, 0.2, 0.1, 0.3]])
    angles = torch.zeros(1, 24)
    angles[0, 0], angles[0, 12] = 1., 0.1  # bin 0 (0 rad) plus a residual of 0.1
    dims = torch.tensor([[4., -1.5, 1.6]])  # l, h, w; a negative size is kept
    bboxes_3d, bboxes_2d, alphas = coder.decode_official(boxes, torch.tensor([10.]), dims, angles, cam2img,
                                                         (400, 1000))
    assert bboxes_2d[0].tolist() == pytest.approx([400., 160., 700., 320.])
    # x = (500 - 480) 10 / 500 - 50 / 500, y = (200 - 190) 10 / 500 - 10 / 500, then the bottom: y + h / 2
    expected = [0.3, 0.18 - 0.75, 10., 4., -1.5, 1.6, 0.1 + math.atan2(550 - 480, 500)]
    assert bboxes_3d.tensor[0].tolist() == pytest.approx(expected, abs=1e-6)
    assert alphas.tolist() == pytest.approx([0.1])
