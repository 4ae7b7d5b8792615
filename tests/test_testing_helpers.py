"""perception.testing: the data-sample builder shared by the model tests and the benchmarks."""
import numpy as np
import torch

from perception.testing import mono3d_sample

CAM2IMG = np.array([[180., 0., 160., 0.], [0., 180., 48., 0.], [0., 0., 1., 0.], [0., 0., 0., 1.]])


def test_mono3d_sample_projects_its_boxes():
    objects = [[-2., 1.6, 12., 3.9, 1.5, 1.6, 0.3, 2], [3., 1.6, 20., 0.8, 1.7, 0.6, -1.2, 0]]
    sample = mono3d_sample(objects, (96, 320), CAM2IMG)
    gt3d, gt2d = sample.gt_instances_3d, sample.gt_instances
    assert gt3d.labels_3d.tolist() == [2, 0] == gt2d.labels.tolist()
    assert torch.allclose(gt3d.depths, torch.tensor([12., 20.]))
    # the gravity centre (half a height above the bottom centre) projects by the pinhole model
    expected = torch.tensor([[160 + 180 * -2 / 12, 48 + 180 * (1.6 - 0.75) / 12],
                             [160 + 180 * 3 / 20, 48 + 180 * (1.6 - 0.85) / 20]])
    assert torch.allclose(gt3d.centers_2d, expected, atol=1e-4)
    x1, y1, x2, y2 = gt2d.bboxes.unbind(1)
    cx, cy = gt3d.centers_2d.unbind(1)
    assert ((x1 < cx) & (cx < x2) & (y1 < cy) & (cy < y2)).all()
    assert sample.img_shape == (96, 320) and np.array_equal(sample.metainfo['cam2img'], CAM2IMG)


def test_mono3d_sample_without_objects():
    sample = mono3d_sample(np.zeros((0, 8)), (96, 320), CAM2IMG)
    assert sample.gt_instances.bboxes.shape == (0, 4) and sample.gt_instances_3d.centers_2d.shape == (0, 2)
