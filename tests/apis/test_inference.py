"""perception.apis: init_model + inference_mono3d on a tiny MonoDETR."""
import cv2
import numpy as np
import pytest
import torch
from mmdet3d.structures import CameraInstance3DBoxes

from perception.apis import inference_mono3d, init_model
from perception.fileio import InvalidInputError
from perception.structures import cam2img_to_4x4
from perception.testing import tiny_mono3d_detector_cfg

P2 = np.array([[721.5, 0., 609.6, 44.9], [0., 721.5, 172.9, 0.2], [0., 0., 1., 0.003]])


@pytest.fixture(scope='module')
def model_and_checkpoint(tmp_path_factory):
    cfg = tiny_mono3d_detector_cfg('configs/monodetr/monodetr_r18_demo_synthkitti-mono3d.py')
    cfg.model.test_cfg = dict(max_per_img=50, score_thr=0., depth_score=True)
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match='random initialisation'):
        source = init_model(cfg)
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.pth'
    torch.save({'state_dict': source.state_dict(), 'meta': {'dataset_meta': {'classes': ['Ped', 'Cyc', 'Car']}}},
               path)
    with pytest.warns(UserWarning, match='random initialisation'):
        model = init_model(cfg, str(path), device='cpu')
    return source, model, path


def test_init_model_loads_the_checkpoint(model_and_checkpoint):
    source, model, _ = model_and_checkpoint
    assert not model.training
    assert model.dataset_meta['classes'] == ['Ped', 'Cyc', 'Car']
    # built without a checkpoint and without init_weights(): no uninitialised memory (it once held NaNs)
    for name, value in source.state_dict().items():
        assert not value.is_floating_point() or torch.isfinite(value).all(), name
    for (name, a), b in zip(source.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name


def test_inference_on_an_array_and_a_file(model_and_checkpoint, tmp_path):
    _, model, _ = model_and_checkpoint
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (150, 500, 3), dtype=np.uint8)
    bboxes_3d, scores, labels = inference_mono3d(model, image, P2)
    assert isinstance(bboxes_3d, CameraInstance3DBoxes)
    # top-k 50 of 10 queries x 3 classes, none under the zero threshold
    assert len(bboxes_3d) == scores.shape[0] == labels.shape[0] == 30
    assert labels.max() < 3 and torch.isfinite(bboxes_3d.tensor).all()

    path = tmp_path / 'frame.png'
    cv2.imwrite(str(path), image)
    from_file = inference_mono3d(model, str(path), cam2img_to_4x4(P2))
    torch.testing.assert_close(from_file[0].tensor, bboxes_3d.tensor)
    torch.testing.assert_close(from_file[1], scores)


def test_inference_rejects_bad_input(model_and_checkpoint, tmp_path):
    _, model, _ = model_and_checkpoint
    image = np.zeros((150, 500, 3), np.uint8)
    with pytest.raises(ValueError, match='non-finite'):
        inference_mono3d(model, image, np.full((3, 4), np.nan))
    with pytest.raises(FileNotFoundError, match='missing.png'):
        inference_mono3d(model, str(tmp_path / 'missing.png'), P2)
    with pytest.raises(ValueError, match='3x3, 3x4 or 4x4'):
        inference_mono3d(model, image, np.eye(2))


def test_init_model_refuses_a_checkpoint_that_does_not_fit(model_and_checkpoint, tmp_path):
    """Issue 21 defect 2: another model's checkpoint, or {'state_dict': {}}, gave a model of random weights."""
    source, model, _ = model_and_checkpoint
    empty = tmp_path / 'empty.pth'
    torch.save({'state_dict': {}}, empty)
    n_keys = len([k for k in source.state_dict() if not k.endswith('num_batches_tracked')])
    with pytest.raises(InvalidInputError, match=rf'(?s)empty.pth does not fit .*{n_keys} missing keys: .*more\).*'
                       'load_strict'):
        init_model(model.cfg, str(empty))
    other = tmp_path / 'other.pth'
    state = {f'backbone.{k}': v for k, v in source.state_dict().items()}  # e.g. a wrapper's prefix
    torch.save({'state_dict': state}, other)
    with pytest.raises(InvalidInputError, match=rf'{n_keys} missing keys.*\n{len(state)} unexpected keys'):
        init_model(model.cfg, str(other))
    with pytest.warns(UserWarning, match='random initialisation'):
        lenient = init_model(model.cfg, str(empty), cfg_options={'load_strict': False})  # on purpose
    assert isinstance(lenient, torch.nn.Module)


def test_zero_focal_length_names_the_camera_matrix(model_and_checkpoint):
    """Issue 21 defect 7: a cam2img with a zero focal length failed inside linalg.inv."""
    _, model, _ = model_and_checkpoint
    bad = P2.copy()
    bad[0, 0] = 0.
    with pytest.raises(InvalidInputError, match='cam2img .*focal'):
        inference_mono3d(model, np.zeros((150, 500, 3), np.uint8), bad)


def test_demo_checks_its_output_folder_before_inference(tmp_path, monkeypatch):
    """Issue 21 defect 7: mono3d_demo.py --out into a missing folder failed after inference."""
    import importlib.util
    import sys
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        'mono3d_demo', Path(__file__).resolve().parents[2] / 'tools' / 'demo' / 'mono3d_demo.py')
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)

    def no_inference(*args, **kwargs):
        raise AssertionError('the model was built before the output was checked')

    monkeypatch.setattr(demo, 'init_model', no_inference)
    out = tmp_path / 'missing' / 'frame.png'
    monkeypatch.setattr(sys, 'argv',
                        ['mono3d_demo.py', 'img.png', 'calib.txt', 'cfg.py', 'ckpt.pth', '--out', str(out)])
    with pytest.raises(FileNotFoundError, match=f'--out {out}: the folder .*missing does not exist'):
        demo.main()
