"""Monocular 3D data samples built from a list of camera boxes."""
import numpy as np
import torch
from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
from mmengine.structures import InstanceData

from perception.structures import project_points, projected_boxes_2d


def mono3d_sample(objects, img_size, cam2img) -> Det3DDataSample:
    """A data sample with the camera boxes ``objects``, rows (x, y, z bottom centre, l, h, w, ry, label).

    The 3D ground truth carries the boxes, labels, projected gravity centres and depths; the 2D ground
    truth the bounding rectangle of the projected corners. ``img_size`` is (H, W), ``cam2img`` 4x4.
    """
    objects = np.asarray(objects, dtype=np.float32).reshape(-1, 8)
    boxes = CameraInstance3DBoxes(torch.from_numpy(objects[:, :7]))
    centers = project_points(boxes.gravity_center.numpy(), cam2img)
    bboxes = projected_boxes_2d(boxes.corners.numpy(), cam2img)
    img_size = tuple(img_size)
    sample = Det3DDataSample(metainfo=dict(cam2img=cam2img, img_shape=img_size, ori_shape=img_size,
                                           pad_shape=img_size, box_type_3d=CameraInstance3DBoxes))
    labels = torch.from_numpy(objects[:, 7]).long()
    sample.gt_instances_3d = InstanceData(bboxes_3d=boxes, labels_3d=labels,
                                          centers_2d=torch.from_numpy(centers).float(),
                                          depths=boxes.gravity_center[:, 2])
    sample.gt_instances = InstanceData(bboxes=torch.from_numpy(bboxes).float(), labels=labels)
    return sample
