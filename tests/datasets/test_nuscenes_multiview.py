"""NuScenesMultiViewDataset's temporal order (runs, prev_exists, queues, ego motion) and StreamBatchSampler, on the
nuScenes oracle database (2 scenes of 10 samples) converted by tools/create_data.py's converter."""
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from perception.datasets import NuScenesMultiViewDataset, StreamBatchSampler
from perception.datasets.converters import create_nuscenes_infos
from perception.datasets.nuscenes_multiview import split_sequences


@pytest.fixture(scope='module')
def oracle_infos(shared_dir, tmp_path_factory):
    """The oracle's database (with empty camera files, which it does not ship) and its val info file."""
    root = tmp_path_factory.mktemp('nus') / 'nus-synth-mini'
    shutil.copytree(shared_dir / 'oracles/nuscenes/nus-synth-mini', root)
    for row in json.loads((root / 'v1.0-synth-mini/sample_data.json').read_text()):
        (root / row['filename']).parent.mkdir(parents=True, exist_ok=True)
        (root / row['filename']).touch()
    return root, create_nuscenes_infos(str(root), 'v1.0-synth-mini')['val']


def test_split_sequences_as_streampetr():
    scenes = np.array([0] * 5 + [1] * 4 + [2])
    assert split_sequences(scenes, 1).tolist() == [0] * 5 + [1] * 4 + [2]
    assert split_sequences(scenes, 2).tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4]


def test_runs_prev_exists_and_queues(oracle_infos):
    root, ann_file = oracle_infos
    train = NuScenesMultiViewDataset(str(root), ann_file, seq_split_num=2, queue_length=3)
    assert len(train) == 20
    assert train.flag.tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    prev = [train.get_data_info(i)['prev_exists'] for i in range(20)]
    assert [i for i, p in enumerate(prev) if not p] == [0, 5, 10, 15]
    assert train.run_indices(6) == [5, 5, 6] and train.run_indices(9) == [7, 8, 9]
    queue = train.prepare_data(6)
    assert [item['token'] for item in queue] == [train.get_data_info(i)['token'] for i in (5, 5, 6)]
    times = [train.get_data_info(i)['timestamp'] for i in range(20)]
    assert all(b > a for a, b in zip(times[:9], times[1:10]))
    test = NuScenesMultiViewDataset(str(root), ann_file, seq_split_num=2, test_mode=True)
    assert [i for i in range(20) if not test.get_data_info(i)['prev_exists']] == [0, 10]


def test_ego_motion_maps_parked_objects_onto_themselves(oracle_infos):
    root, ann_file = oracle_infos
    dataset = NuScenesMultiViewDataset(str(root), ann_file)
    checked = 0
    for idx in range(1, 10):
        prev, cur = dataset.get_data_info(idx - 1), dataset.get_data_info(idx)
        motion = np.linalg.inv(cur['lidar2global']) @ prev['lidar2global']
        boxes = {}
        for info in (prev, cur):
            ann = info['ann_info']
            for token, box, velocity in zip(ann['instance_token'], ann['gt_bboxes_3d'].gravity_center.numpy(),
                                            ann['gt_bboxes_3d'].tensor[:, 7:9].numpy()):
                if np.abs(velocity).max() < 1e-3:
                    boxes.setdefault(token, []).append(box.astype(np.float64))
        for token, (before, now) in ((t, b) for t, b in boxes.items() if len(b) == 2):
            np.testing.assert_allclose(motion[:3, :3] @ before + motion[:3, 3], now, atol=1e-3)
            checked += 1
        # The ego moves between samples, so the check is not trivial.
        assert np.linalg.norm(motion[:3, 3]) > 1.0
    assert checked > 20


def test_views_and_matrices(oracle_infos):
    root, ann_file = oracle_infos
    dataset = NuScenesMultiViewDataset(str(root), ann_file, cameras=('CAM_BACK', 'CAM_FRONT'))
    info = dataset.get_data_info(0)
    assert info['cam2img'].shape == (2, 4, 4) and info['img_path'][0].split('/')[-2] == 'CAM_BACK'
    np.testing.assert_allclose(info['lidar2img'], info['cam2img'] @ info['lidar2cam'])
    assert len(info['cam_ann_info']) == 2
    assert dataset.metainfo['version'] == 'v1.0-synth-mini'


def test_stream_batch_sampler_walks_runs_in_order():
    flag = np.array([0] * 5 + [1] * 5 + [2] * 5 + [3] * 5)
    sampler = StreamBatchSampler(SimpleNamespace(dataset=SimpleNamespace(flag=flag)), batch_size=2, seed=3)
    assert len(sampler) == 10
    batches = list(sampler) + list(sampler)
    for slot in range(2):
        seq = [batch[slot] for batch in batches]
        for a, b in zip(seq, seq[1:]):
            # Within a run one sample after the other; a new run starts at its first sample.
            assert b == a + 1 if flag[a] == flag[b] else b == np.flatnonzero(flag == flag[b])[0]
        assert seq[0] == np.flatnonzero(flag == flag[seq[0]])[0]
    # Both slots together use every run in each pass over the shuffled order.
    first_runs = {flag[batch[slot]] for batch in batches[:10] for slot in range(2)}
    assert first_runs == {0, 1, 2, 3}
    with pytest.raises(ValueError, match='4 runs cannot feed 8 batch slots'):
        StreamBatchSampler(SimpleNamespace(dataset=SimpleNamespace(flag=flag)), batch_size=8)


def test_dataloader_config_builds_the_stream_sampler(oracle_infos):
    from mmengine.runner import Runner
    root, ann_file = oracle_infos
    loader = Runner.build_dataloader(dict(
        batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
        batch_sampler=dict(type='StreamBatchSampler', seed=0),
        dataset=dict(type='NuScenesMultiViewDataset', data_root=str(root), ann_file=ann_file, seq_split_num=2)))
    assert isinstance(loader.batch_sampler, StreamBatchSampler) and len(loader) == 10
    first, second = list(loader.batch_sampler)[:2]
    assert [b - a for a, b in zip(first, second)] == [1, 1]
