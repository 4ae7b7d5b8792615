"""tools/analysis/draw_kitti_results.py on a real KITTI frame, with its ground truth as detections."""
import importlib.util
from pathlib import Path

import cv2
import numpy as np

from perception.fileio import read_label_file, write_label_file

REPO = Path(__file__).resolve().parents[2]


def load_tool():
    spec = importlib.util.spec_from_file_location('draw_kitti_results',
                                                  REPO / 'tools/analysis/draw_kitti_results.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_draws_ground_truth_and_detections(tmp_path):
    from perception.datasets.synthetic import generate_kitti_object
    tool = load_tool()
    root = tmp_path / 'world'
    generate_kitti_object(str(root), num_train=1, num_val=0, seed=3, workers=1, progress=False)
    frame = '000000'
    gt = read_label_file(root / 'training' / 'label_2' / f'{frame}.txt')
    keep = gt['name'] != 'DontCare'
    det = {k: v[keep] for k, v in gt.items()}
    det['score'] = np.full(int(keep.sum()), 0.9)
    (tmp_path / 'res').mkdir()
    write_label_file(tmp_path / 'res' / f'{frame}.txt', det, with_score=True)

    boxes = tool.label_boxes(det)
    assert boxes.shape == (keep.sum(), 7)
    # (x, y, z, l, h, w, ry): l, h, w come from the file's h, w, l
    np.testing.assert_allclose(boxes[:, 3:6], det['dimensions'][:, [2, 0, 1]])

    out = tool.draw_results(str(root), str(tmp_path / 'res'), str(tmp_path / 'out.png'))
    drawn = cv2.imread(out)
    image = cv2.imread(str(root / 'training' / 'image_2' / f'{frame}.png'))
    assert drawn.shape[0] == image.shape[0] and drawn.shape[1] > image.shape[1]
    # boxes were painted over the image part, and the BEV part is not empty
    assert (drawn[:, :image.shape[1]] != image).any(axis=2).mean() > 0.005
    assert drawn[:, image.shape[1]:].any()
