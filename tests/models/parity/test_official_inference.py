"""Inference parity with the official MonoDETR and MonoDGP (issue 22) on KITTI frame 000008.

The fixtures (``oracles/parity/public/<model>/``, described in ``../shared/oracles/parity/README.md``) hold
what the unmodified official code computes with deterministic weights: the input tensor, every raw output,
the top-50 detections and the decoded KITTI rows. The weights are regenerated from the shapes files, saved
as an official checkpoint, converted with ``tools/model_converters/<model>_official.py`` and loaded into the
official-behaviour config; its outputs must be the official ones.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch

from perception.apis import inference_mono3d
from perception.datasets.converters.kitti_converter import create_kitti_infos
from perception.datasets.transforms import PILAffineResizeMono3D
from perception.datasets.transforms.pil_affine import official_affine_inverse
from perception.fileio import read_calib_file
from perception.testing.parity import (OFFICIAL_CLASSES, fixture_metainfo, official_outputs, parity_state_dict,
                                       state_dict_checksum)

METHODS = ('monodetr', 'monodgp')
# README §3: sha256 prefix and float64 sum of the state dicts
CHECKSUMS = {('monodetr', 0): ('ed8bbfe4b1f99c23', 62907.235817), ('monodetr', 1): ('12834fd12d5e493f', 62030.783577),
             ('monodgp', 0): ('47332bd03fce6b42', 66304.430284), ('monodgp', 1): ('8e4828bf0684631a', 65643.260204)}
OUTPUT_ATOL = 1e-4
ROW_ATOL = 1e-3  # pixels, metres, radians
SCORE_ATOL = 1e-5


@pytest.mark.parametrize('model,seed', sorted(CHECKSUMS))
def test_weights_rule_reproduces_the_fixture_weights(shared_dir, model, seed):
    state_dict = parity_state_dict(shared_dir / f'oracles/parity/shapes/{model}_shapes.json', seed)
    digest, total = state_dict_checksum(state_dict)
    assert digest == CHECKSUMS[model, seed][0]
    assert total == pytest.approx(CHECKSUMS[model, seed][1], abs=1e-6)


def frame_p2(shared_dir) -> np.ndarray:
    return read_calib_file(shared_dir / 'oracles/parity/public/frame/000008_calib_kitti.txt')['P2']


@pytest.fixture(scope='module')
def run(official_models, shared_dir, fixture_dir):
    """Per model: the model, its raw outputs in the fixture's layout and its decoded detections (score
    threshold 0) on the fixture's input tensor."""
    cache = {}

    def get(model: str):
        if model not in cache:
            detector = official_models(model)
            inputs = dict(np.load(fixture_dir(model) / 'inputs.npz'))
            meta = fixture_metainfo(inputs, frame_p2(shared_dir))
            with torch.no_grad():
                head_inputs = detector.forward_features({'imgs': torch.from_numpy(inputs['image'])}, 1)
                raw = detector.raw_outputs(head_inputs, [meta])
                last = {key: raw[key][-1] for key in ('cls_scores', 'boxes', 'dims', 'angles', 'depths')}
                results_3d, results_2d = detector.bbox_head.predict_by_feat(last, [meta], head_inputs['img_size'])
            outputs = official_outputs(raw, detector.dataset_meta['classes'])
            cache[model] = detector, outputs, results_3d[0], results_2d[0]
        return cache[model]

    return get


def kitti_rows(result_3d, result_2d, class_names) -> np.ndarray:
    """(N, 14) rows [class id, alpha, x1, y1, x2, y2, h, w, l, x, y, z, ry, score] of the official decoder."""
    boxes = result_3d.bboxes_3d.tensor.double().numpy()
    class_ids = [OFFICIAL_CLASSES.index(class_names[int(label)]) for label in result_3d.labels_3d]
    return np.column_stack([class_ids, result_3d.alphas_3d.double().numpy(), result_2d.bboxes.double().numpy(),
                            boxes[:, [4, 5, 3]], boxes[:, :3], boxes[:, 6], result_3d.scores_3d.double().numpy()])


@pytest.mark.slow
@pytest.mark.parametrize('model', METHODS)
def test_raw_outputs_match_the_official(run, fixture_dir, model):
    _, outputs, _, _ = run(model)
    expected = np.load(fixture_dir(model) / 'outputs.npz')
    assert sorted(outputs) == sorted(expected.files)
    for key in expected.files:
        np.testing.assert_allclose(outputs[key], expected[key], rtol=0, atol=OUTPUT_ATOL, err_msg=key)


@pytest.mark.slow
@pytest.mark.parametrize('model', METHODS)
def test_top50_and_decoded_rows_match_the_official(run, fixture_dir, model):
    detector, outputs, result_3d, result_2d = run(model)
    dets = np.load(fixture_dir(model) / 'dets.npz')
    # the top 50 of sigmoid(logits) over queries x classes, matched by (query, class)
    prob = 1 / (1 + np.exp(-outputs['pred_logits'][0].astype(np.float64)))
    order = np.argsort(-prob, axis=None, kind='stable')[:50]
    query, label = np.unravel_index(order, prob.shape)
    expected_pairs = list(zip(dets['topk_query_index'][0].tolist(), dets['topk_label'][0].tolist()))
    assert sorted(zip(query.tolist(), label.tolist())) == sorted(expected_pairs)
    by_pair = {pair: row for row, pair in enumerate(expected_pairs)}
    raw = dets['dets_raw'][0][[by_pair[pair] for pair in zip(query.tolist(), label.tolist())]]
    np.testing.assert_allclose(prob[query, label], raw[:, 1], rtol=0, atol=SCORE_ATOL)

    rows = kitti_rows(result_3d, result_2d, detector.dataset_meta['classes'])
    expected = dets['decoded_thr0']
    assert rows.shape == expected.shape
    np.testing.assert_array_equal(rows[:, 0], expected[:, 0])
    np.testing.assert_allclose(rows[:, 1:13], expected[:, 1:13], rtol=0, atol=ROW_ATOL)
    np.testing.assert_allclose(rows[:, 13], expected[:, 13], rtol=0, atol=SCORE_ATOL)


@pytest.mark.parametrize('model', METHODS)
def test_pil_resize_gives_the_official_input(shared_dir, fixture_dir, model):
    inputs = np.load(fixture_dir(model) / 'inputs.npz')
    np.testing.assert_array_equal(official_affine_inverse((1242, 375), (1280, 384)), inputs['affine_trans_inv'])
    img = mmcv.imread(str(shared_dir / 'data/mmdet3d_demo/kitti/000008.png'))
    results = PILAffineResizeMono3D((1280, 384)).transform(
        dict(img=img, cam2img=np.eye(4), img_aug_matrix=np.eye(3)))
    rgb = results['img'][..., ::-1].astype(np.float32) / 255
    normalised = ((rgb - inputs['mean']) / inputs['std']).transpose(2, 0, 1)
    np.testing.assert_array_equal(normalised, inputs['image'][0])


@pytest.mark.slow
@pytest.mark.parametrize('model', METHODS)
def test_inference_from_the_raw_frame(official_models, shared_dir, fixture_dir, model):
    """The whole path: PNG, the config's test pipeline and data preprocessor, the model, the decoding."""
    detector = official_models(model)
    bboxes_3d, scores, labels = inference_mono3d(detector, str(shared_dir / 'data/mmdet3d_demo/kitti/000008.png'),
                                                 frame_p2(shared_dir))
    expected = np.load(fixture_dir(model) / 'dets.npz')['decoded_thr0']
    boxes = bboxes_3d.tensor.double().numpy()
    class_names = detector.dataset_meta['classes']
    assert [OFFICIAL_CLASSES.index(class_names[int(i)]) for i in labels] == expected[:, 0].astype(int).tolist()
    np.testing.assert_allclose(boxes[:, [4, 5, 3]], expected[:, 6:9], rtol=0, atol=ROW_ATOL)
    np.testing.assert_allclose(boxes[:, :3], expected[:, 9:12], rtol=0, atol=ROW_ATOL)
    np.testing.assert_allclose(boxes[:, 6], expected[:, 12], rtol=0, atol=ROW_ATOL)
    np.testing.assert_allclose(scores.double().numpy(), expected[:, 13], rtol=0, atol=SCORE_ATOL)


@pytest.mark.slow
@pytest.mark.parametrize('model', METHODS)
def test_converter_names_unexpected_missing_and_untied_keys(official_models, parity_converter, shared_dir, model):
    converter = parity_converter(model)
    rules, unused, aliases = (getattr(converter, f'{model.upper()}_{name}') for name in ('RULES', 'UNUSED', 'ALIASES'))
    detector = official_models(model)
    model_state = detector.state_dict()
    predictor = detector.depth_predictor
    depth_bins = (predictor.num_depth_bins, predictor.depth_min, predictor.depth_max)
    official = {k: torch.from_numpy(v) for k, v in
                parity_state_dict(shared_dir / f'oracles/parity/shapes/{model}_shapes.json', 0).items()}

    def convert(state_dict):  # the machinery lives in monodetr_official.py, which monodgp_official.py imports
        return parity_converter('monodetr').convert_state_dict(
            state_dict, model_state, rules, unused, aliases, detector.dataset_meta['classes'], depth_bins,
            source='ckpt.pth')

    converted = convert(official)
    assert list(converted) == list(model_state)
    with pytest.raises(KeyError, match=r'unexpected keys \[.extra\.weight'):
        convert({**official, 'extra.weight': torch.zeros(1)})
    missing = r'missing keys \[.input_proj\.0\.0\.weight \(for neck\.convs\.0\.conv\.weight\)'
    with pytest.raises(KeyError, match=missing):
        convert({k: v for k, v in official.items() if k != 'input_proj.0.0.weight'})
    alias = next(k for k in official if k.endswith('decoder.bbox_embed.0.layers.0.bias'))
    with pytest.raises(KeyError, match=f'{alias} \\(tied to bbox_embed.0.layers.0.bias\\)'):
        convert({**official, alias: official[alias] + 1})


def read_rows(path) -> tuple:
    """Class names and the 15 numbers of each row of a KITTI result file."""
    rows = [line.split() for line in open(path) if line.strip()]
    return [row[0] for row in rows], np.array([[float(v) for v in row[1:]] for row in rows])


@pytest.mark.slow
@pytest.mark.parametrize('model', METHODS)
def test_tools_test_writes_the_official_rows(official_checkpoints, official_configs, shared_dir, fixture_dir, tmp_path,
                                             model):
    """``tools/test.py --format-only`` on a one-frame KITTI layout of frame 000008 writes the official rows
    (threshold 0.2; the official file has 2 decimals)."""
    root = tmp_path / 'kitti'
    for folder in ('image_2', 'calib', 'label_2'):
        (root / 'training' / folder).mkdir(parents=True)
    (root / 'ImageSets').mkdir()
    for split in ('train', 'val'):
        (root / 'ImageSets' / f'{split}.txt').write_text('000008\n')
    (root / 'training/image_2/000008.png').symlink_to(shared_dir / 'data/mmdet3d_demo/kitti/000008.png')
    frame = shared_dir / 'oracles/parity/public/frame'
    shutil.copy(frame / '000008_calib_kitti.txt', root / 'training/calib/000008.txt')
    shutil.copy(frame / '000008_label_2.txt', root / 'training/label_2/000008.txt')
    create_kitti_infos(str(root), with_lidar=False)

    out = tmp_path / 'results'
    repo = Path(__file__).resolve().parents[3]
    env = dict(os.environ, PYTHONPATH=f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', str(official_configs[model]), str(official_checkpoints(model)[1]),
         '--format-only', '--out-dir', str(out), '--work-dir', str(tmp_path / 'work'), '--cfg-options',
         f'test_dataloader.dataset.data_root={root}/', 'test_dataloader.num_workers=0',
         'test_dataloader.persistent_workers=False'],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names, rows = read_rows(out / '000008.txt')
    expected_names, expected = read_rows(fixture_dir(model) / 'dets_thr0p2_kitti.txt')
    assert names == expected_names
    # columns after truncated and occluded (which the official tester writes as 0.0 0, the project as -1 -1)
    np.testing.assert_allclose(rows[:, 2:], expected[:, 2:], rtol=0, atol=0.005 + ROW_ATOL)


def test_converter_reads_both_official_formats(parity_converter, tmp_path):
    """The official trainer's ``{'model_state': ...}`` and a bare state dict give the same weights; anything
    else is refused naming the file."""
    converter = parity_converter('monodetr')
    state_dict = {'query_embed.weight': torch.arange(6.).view(2, 3), 'label_enc.weight': torch.ones(2)}
    torch.save({'model_state': state_dict, 'epoch': 195, 'best_result': np.float64(20.8)}, tmp_path / 'trainer.pth')
    torch.save(state_dict, tmp_path / 'bare.pth')
    for name in ('trainer.pth', 'bare.pth'):
        read = converter.read_official(str(tmp_path / name))
        assert list(read) == list(state_dict) and all(torch.equal(read[k], v) for k, v in state_dict.items())
    torch.save({'model_state': [1, 2]}, tmp_path / 'other.pth')
    with pytest.raises(ValueError, match='other.pth: expected an official checkpoint'):
        converter.read_official(str(tmp_path / 'other.pth'))
