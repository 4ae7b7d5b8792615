"""KittiMetric: predictions of mmdet3d camera boxes to KITTI rows, evaluation and server format."""
import math

import numpy as np
import pytest
import torch
from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
from mmengine.structures import InstanceData

from perception.evaluation.metrics import KittiMetric, predictions_to_kitti
from perception.fileio import read_label_file, write_label_file
from perception.structures import projected_boxes_2d

P2 = np.array([[700., 0., 600., 0.], [0., 700., 180., 0.], [0., 0., 1., 0.], [0., 0., 0., 1.]])
IMAGE_SHAPE = (375, 1242)
CLASSES = ('Pedestrian', 'Cyclist', 'Car')  # mmdet3d's KITTI order


def boxes(rows):
    """CameraInstance3DBoxes from (x, y, z, l, h, w, ry) rows, bottom centre."""
    return CameraInstance3DBoxes(torch.tensor(rows, dtype=torch.float32).reshape(-1, 7))


def projected(bboxes_3d):
    """The 2D boxes of the projected corners, as a perfect 2D branch would predict them."""
    return projected_boxes_2d(bboxes_3d.corners.double().numpy(), P2)


def test_predicted_2d_boxes_clipping_and_alpha():
    bboxes_3d = boxes([
        [1, 1.5, 20, 4, 1.5, 2, 0],  # in view
        [-8, 1.5, 10, 4, 1.5, 2, 0],  # cut by the left border
        [-5, 1.5, 10, 0.8, 1.7, 0.6, 3.1],  # alpha wraps past pi
        [0, 1.5, -5, 4, 1.5, 2, 0],  # behind the camera
        [1, 1.5, 20, 4, 1.5, 2, 0],  # its 2D box right of the image
    ])
    bboxes_2d = projected(bboxes_3d)
    bboxes_2d[3] = [600, 180, 700, 250]  # a 2D box in view does not save a box behind the camera
    bboxes_2d[4] = [1250, 100, 1300, 200]
    dets = predictions_to_kitti(bboxes_3d, bboxes_2d, np.array([0.9, 0.8, 0.7, 0.6, 0.5]),
                                np.array([2, 2, 0, 2, 2]), CLASSES, IMAGE_SHAPE)
    assert dets['name'].tolist() == ['Car', 'Car', 'Pedestrian']
    np.testing.assert_allclose(dets['score'], [0.9, 0.8, 0.7], rtol=1e-6)
    # Corners x in {-1, 3}, y in {0, 1.5}, z in {19, 21}: u = 600 + 700 x / z, v = 180 + 700 y / z.
    np.testing.assert_allclose(dets['bbox'][0], [600 - 700 / 19, 180, 600 + 2100 / 19, 180 + 1050 / 19],
                               atol=1e-3)
    # Corners x in [-10, -6], z in [9, 11]: u from 600 - 7000 / 9 < 0 (clipped) to 600 - 4200 / 11.
    np.testing.assert_allclose(dets['bbox'][1][[0, 2]], [0, 600 - 4200 / 11], atol=1e-3)
    np.testing.assert_allclose(dets['dimensions'][0], [1.5, 2, 4])  # KITTI order h, w, l
    np.testing.assert_allclose(dets['location'][0], [1, 1.5, 20])
    assert dets['alpha'][0] == pytest.approx(-math.atan2(1, 20), abs=1e-6)
    assert dets['alpha'][2] == pytest.approx(3.1 + math.atan2(5, 10) - 2 * math.pi, abs=1e-6)


def sample(frame_id, rows, labels, scores):
    """A data sample of the KITTI frame ``frame_id`` whose 2D boxes are those of its projected 3D boxes."""
    data_sample = Det3DDataSample()
    # sample_idx (mmengine's dataset position) differs from the frame: the metric must read frame_id
    data_sample.set_metainfo(dict(frame_id=frame_id, sample_idx=100 + frame_id, ori_shape=IMAGE_SHAPE,
                                  img_shape=(IMAGE_SHAPE[0] * 2, IMAGE_SHAPE[1] * 2)))
    data_sample.pred_instances_3d = InstanceData(
        bboxes_3d=boxes(rows), labels_3d=torch.tensor(labels), scores_3d=torch.tensor(scores))
    data_sample.pred_instances = InstanceData(bboxes=torch.from_numpy(projected(boxes(rows))).float(),
                                              labels=torch.tensor(labels), scores=torch.tensor(scores))
    return data_sample


def write_ground_truth(folder):
    """Frame 0: one easy Car at (1, 1.5, 20); frame 1: nothing."""
    folder.mkdir()
    car = boxes([[1, 1.5, 20, 4, 1.5, 2, 0]])
    truth = predictions_to_kitti(car, projected(car), np.ones(1), np.array([2]), CLASSES, IMAGE_SHAPE)
    truth.update(truncated=np.zeros(1), occluded=np.zeros(1, dtype=int))
    write_label_file(folder / '000000.txt', truth)
    (folder / '000001.txt').write_text('')


@pytest.mark.parametrize('shift,expected', [(0.0, 100 / 11), (3.0, 0.0)])
def test_metric_evaluates_against_label_files(tmp_path, shift, expected):
    write_ground_truth(tmp_path / 'label_2')
    metric = KittiMetric(ann_dir=str(tmp_path / 'label_2'), outfile_prefix=str(tmp_path / 'results'))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [
        sample(0, [[1 + shift, 1.5, 20, 4, 1.5, 2, 0]], [2], [0.8]),
        sample(1, np.zeros((0, 7)), [], []),
    ])
    results = metric.evaluate(2)
    # A single GT found: p[0] = 1 only (quirk 1 of the oracle README), R11 = 100 / 11. Shifted by
    # 3 m at 20 m, the box moves 105 px of its 147 px width: no match in 2D either.
    assert results['kitti/Car_3D_R11_easy'] == pytest.approx(expected, abs=1e-6)
    assert results['kitti/Car_2D_R11_easy'] == pytest.approx(expected, abs=1e-6)
    assert 'kitti/Pedestrian_3D_R40_easy' not in results  # no Pedestrian detection: not evaluated
    assert (tmp_path / 'results' / '000001.txt').read_text() == ''
    assert len(read_label_file(tmp_path / 'results' / '000000.txt', with_score=True)['name']) == 1


def test_format_only_writes_server_folder(tmp_path):
    metric = KittiMetric(format_only=True, outfile_prefix=str(tmp_path / 'out'))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [sample(7, [[1, 1.5, 20, 4, 1.5, 2, 0], [2, 1.6, 30, 0.8, 1.7, 0.6, 1]], [2, 0],
                               [0.8, 0.4]), sample(8, np.zeros((0, 7)), [], [])])
    assert metric.evaluate(2) == {}
    rows = (tmp_path / 'out' / '000007.txt').read_text().splitlines()
    assert [r.split()[0] for r in rows] == ['Car', 'Pedestrian'] and len(rows[0].split()) == 16
    assert (tmp_path / 'out' / '000008.txt').read_text() == ''


def test_bad_predictions_and_arguments(tmp_path):
    metric = KittiMetric(format_only=True, outfile_prefix=str(tmp_path))
    metric.dataset_meta = dict(classes=CLASSES)
    with pytest.raises(ValueError, match='predictions of frame 000003:0: dimensions'):
        metric.process({}, [sample(3, [[1, 1.5, 20, -4, 1.5, 2, 0]], [2], [0.8])])
    with pytest.raises(ValueError, match='predictions of frame 000003:0: score must be finite'):
        metric.process({}, [sample(3, [[1, 1.5, 20, 4, 1.5, 2, 0]], [2], [float('nan')])])
    no_2d = sample(3, [[1, 1.5, 20, 4, 1.5, 2, 0]], [2], [0.8])
    del no_2d.pred_instances
    with pytest.raises(KeyError, match='frame 000003 have no 2D boxes'):
        metric.process({}, [no_2d])
    nan_2d = sample(3, [[1, 1.5, 20, 4, 1.5, 2, 0]], [2], [0.8])
    nan_2d.pred_instances.bboxes[0, 2] = float('nan')
    with pytest.raises(ValueError, match='predictions of frame 000003:0: bbox must be finite'):
        metric.process({}, [nan_2d])
    no_frame = sample(3, [[1, 1.5, 20, 4, 1.5, 2, 0]], [2], [0.8])
    del no_frame.frame_id
    with pytest.raises(KeyError, match='without frame_id'):
        metric.process({}, [no_frame])
    with pytest.raises(ValueError, match='ann_dir'):
        KittiMetric()
    with pytest.raises(ValueError, match='outfile_prefix'):
        KittiMetric(format_only=True)
