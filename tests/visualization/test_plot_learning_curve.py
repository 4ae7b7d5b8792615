"""tools/analysis/plot_learning_curve.py: validation records of mmengine logs, resumed runs, the picture."""
import importlib.util
import json
from pathlib import Path

import cv2
import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location('plot_learning_curve', REPO / 'tools/analysis/plot_learning_curve.py')
_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tool)
plot, read_scalars = _tool.plot, _tool.read_scalars


def write_log(folder, records):
    folder.mkdir(parents=True)
    with open(folder / 'scalars.json', 'w') as f:
        for record in records:
            f.write(json.dumps(record) + '\n')


def test_validation_records_of_a_resumed_run_and_the_picture(tmp_path):
    metric = 'kitti_loose/Car_2D_R40_moderate'
    # training records carry no metric and are skipped; the resumed run overrides iteration 500
    write_log(tmp_path / 'run' / '20261203_010000' / 'vis_data',
              [{'loss': 30.0, 'step': 10}, {metric: 5.0, 'step': 500}, {metric: 9.0, 'step': 1000}])
    write_log(tmp_path / 'run' / '20261203_020000' / 'vis_data',
              [{metric: 10.0, 'step': 1000}, {'loss': 20.0, 'step': 1010}, {metric: 21.5, 'step': 1500}])
    curve = read_scalars(str(tmp_path / 'run'), [metric, 'kitti/Car_3D_R40_moderate'])
    assert curve == {500: {metric: 5.0}, 1000: {metric: 10.0}, 1500: {metric: 21.5}}
    # the training loss of the same logs (the main job's loss curve)
    assert read_scalars(str(tmp_path / 'run'), ['loss']) == {10: {'loss': 30.0}, 1010: {'loss': 20.0}}
    out = tmp_path / 'curve.png'
    plot({'MonoDETR': curve}, [metric], str(out))
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 100 and (image < 250).any()


def test_a_folder_without_logs_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='scalars.json'):
        read_scalars(str(tmp_path), ['kitti/Car_2D_R40_moderate'])
