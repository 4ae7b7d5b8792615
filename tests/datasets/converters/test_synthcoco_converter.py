"""KITTI-layout frames -> COCO files (``tools/create_data.py synthetic-coco``), read back by pycocotools and by
mmdet's CocoDataset with the synthcoco config's dataset settings."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image
from pycocotools.coco import COCO

from perception.datasets.converters import synthcoco_converter
from perception.datasets.converters.synthcoco_converter import create_synthcoco
from perception.fileio.kitti import read_label_file
from perception.registry import DATASETS

REPO_ROOT = Path(__file__).resolve().parents[3]
CONFIG = REPO_ROOT / 'configs/_base_/datasets/synthcoco_detection.py'

# name, truncated, occluded, x1, y1, x2, y2 of each frame; 3D fields are filled in by ``label_line``.
FRAMES = {
    0: ((100, 40), [
        ('Car', 0.0, 0, 10.5, 5.25, 30.0, 20.75),
        ('Pedestrian', 0.3, 2, -5.0, 2.0, 8.0, 39.0),  # truncated, occluded, reaches left of the image
        ('Van', 0.0, 0, 40.0, 10.0, 60.0, 20.0),
        ('Cyclist', 0.0, 1, 90.0, 10.0, 120.0, 45.0),  # reaches out of the right and bottom edges
        ('Person_sitting', 0.0, 0, 70.0, 10.0, 75.0, 20.0),
        ('DontCare', -1, -1, 50.0, 8.0, 60.0, 16.0),
    ]),
    1: ((100, 40), [
        ('Car', 0.0, 0, 0.0, 0.0, 99.0, 39.0),
        ('Truck', 0.0, 0, 1.0, 1.0, 20.0, 20.0),
        ('Misc', 0.0, 0, 1.0, 1.0, 5.0, 5.0),
    ]),
    2: ((120, 50), [
        ('Pedestrian', 0.0, 0, 3.0, 4.0, 13.0, 34.0),
        ('DontCare', -1, -1, 100.0, 1.0, 110.0, 6.0),
        ('Car', 0.0, 0, 125.0, 1.0, 140.0, 6.0),  # wholly outside the image: empty once clipped
    ]),
}
SPLITS = {'train': [0, 1], 'val': [2]}


def label_line(name, truncated, occluded, x1, y1, x2, y2):
    if name == 'DontCare':
        return f'DontCare -1 -1 -10 {x1} {y1} {x2} {y2} -1 -1 -1 -1000 -1000 -1000 -10\n'
    return f'{name} {truncated} {occluded} 0.1 {x1} {y1} {x2} {y2} 1.5 1.6 3.9 1.0 1.6 20.0 0.1\n'


@pytest.fixture
def kitti_root(tmp_path):
    root = tmp_path / 'kitti'
    for sub in ('ImageSets', 'training/image_2', 'training/label_2'):
        (root / sub).mkdir(parents=True)
    for split, ids in SPLITS.items():
        (root / 'ImageSets' / f'{split}.txt').write_text(''.join(f'{i:06d}\n' for i in ids))
    for idx, (size, rows) in FRAMES.items():
        Image.new('RGB', size, (idx * 50, 0, 0)).save(root / 'training/image_2' / f'{idx:06d}.png')
        (root / 'training/label_2' / f'{idx:06d}.txt').write_text(''.join(label_line(*r) for r in rows))
    return root


@pytest.fixture
def converted(kitti_root, tmp_path):
    out = tmp_path / 'coco'
    return out, create_synthcoco(str(kitti_root), str(out))


def test_categories_follow_config_classes(converted):
    out, _ = converted
    classes = Config.fromfile(CONFIG).metainfo['classes']
    for split in SPLITS:
        coco = COCO(str(out / 'annotations' / f'instances_{split}.json'))
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(classes)
        assert coco.getCatIds(catNms=list(classes)) == [1, 2, 3]


def test_frame_boxes_hand_checked(converted):
    out, counts = converted
    coco = COCO(str(out / 'annotations/instances_train.json'))
    assert coco.loadImgs([0]) == [dict(id=0, file_name='000000.png', width=100, height=40)]
    anns = [(a['category_id'], a['bbox'], a['area'], a['iscrowd']) for a in coco.loadAnns(coco.getAnnIds(imgIds=[0]))]
    assert anns == [
        (1, [10.5, 5.25, 19.5, 15.5], 19.5 * 15.5, 0),  # Car
        (2, [0.0, 2.0, 8.0, 37.0], 8.0 * 37.0, 0),  # Pedestrian clipped at x = 0
        (3, [90.0, 10.0, 10.0, 30.0], 300.0, 0),  # Cyclist clipped at x = W, y = H
        (1, [50.0, 8.0, 10.0, 8.0], 80.0, 1),  # DontCare: one crowd box per category
        (2, [50.0, 8.0, 10.0, 8.0], 80.0, 1),
        (3, [50.0, 8.0, 10.0, 8.0], 80.0, 1),
    ]
    ids = [a['id'] for split in SPLITS for a in json.loads(
        (out / 'annotations' / f'instances_{split}.json').read_text())['annotations']]
    assert min(ids) == 1  # COCOeval reads id 0 as "unmatched"
    assert counts['train'] == dict(images=2, annotations=7, per_class=dict(Car=2, Pedestrian=1, Cyclist=1),
                                   dontcare=1, ignore_boxes=3, dropped=dict(Misc=1, Person_sitting=1, Truck=1, Van=1),
                                   outside={})
    assert counts['val'] == dict(images=1, annotations=4, per_class=dict(Car=0, Pedestrian=1, Cyclist=0),
                                 dontcare=1, ignore_boxes=3, dropped={}, outside=dict(Car=1))


def test_boxes_equal_kitti_labels(converted, kitti_root):
    out, _ = converted
    names = dict(Car=1, Pedestrian=2, Cyclist=3)
    for split, ids in SPLITS.items():
        coco = COCO(str(out / 'annotations' / f'instances_{split}.json'))
        assert sorted(coco.getImgIds()) == ids
        for idx in ids:
            (width, height), _ = FRAMES[idx]
            labels = read_label_file(kitti_root / 'training/label_2' / f'{idx:06d}.txt')
            expected = []
            for name, box in zip(labels['name'], labels['bbox']):
                x1, y1, x2, y2 = np.clip(box, 0, [width, height, width, height])
                if x2 <= x1 or y2 <= y1 or (name not in names and name != 'DontCare'):
                    continue
                cats = [names[name]] if name in names else [1, 2, 3]
                expected += [(c, name == 'DontCare', [x1, y1, x2 - x1, y2 - y1]) for c in cats]
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[idx]))
            assert len(anns) == len(expected)
            for ann, (cat, crowd, bbox) in zip(anns, expected):
                assert (ann['category_id'], ann['iscrowd']) == (cat, crowd)
                np.testing.assert_allclose(ann['bbox'], bbox, atol=1e-9)
                assert ann['area'] == pytest.approx(bbox[2] * bbox[3])


def test_images_are_hard_links_with_the_json_sizes(converted, kitti_root):
    out, _ = converted
    for split, ids in SPLITS.items():
        coco = COCO(str(out / 'annotations' / f'instances_{split}.json'))
        assert sorted(p.name for p in (out / split).iterdir()) == [f'{i:06d}.png' for i in ids]
        for image in coco.loadImgs(ids):
            path = out / split / image['file_name']
            with Image.open(path) as img:
                assert img.size == (image['width'], image['height']) == FRAMES[image['id']][0]
            assert path.samefile(kitti_root / 'training/image_2' / image['file_name'])


def test_copies_where_links_fail(kitti_root, tmp_path, monkeypatch):
    def no_link(src, dst):
        raise OSError(18, 'Invalid cross-device link')

    monkeypatch.setattr(synthcoco_converter.os, 'link', no_link)
    out = tmp_path / 'copied'
    create_synthcoco(str(kitti_root), str(out))
    for split, ids in SPLITS.items():
        for idx in ids:
            copy, source = out / split / f'{idx:06d}.png', kitti_root / 'training/image_2' / f'{idx:06d}.png'
            assert not copy.samefile(source) and copy.read_bytes() == source.read_bytes()


def test_mmdet_coco_dataset_loads_it_with_the_config_settings(converted):
    out, _ = converted
    cfg = Config.fromfile(CONFIG)
    init_default_scope(cfg.default_scope)
    expected = {'train': {0: (3, 3), 1: (1, 0)}, 'val': {2: (1, 3)}}  # image id -> (boxes, ignored boxes)
    for split in SPLITS:
        dataset_cfg = cfg[f'{split}_dataloader'].dataset
        dataset_cfg.data_root = str(out)
        dataset = DATASETS.build(dataset_cfg)
        assert dataset.metainfo['classes'] == ('Car', 'Pedestrian', 'Cyclist')
        got = {}
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            flags = [inst['ignore_flag'] for inst in info['instances']]
            got[info['img_id']] = (flags.count(0), flags.count(1))
            assert Path(info['img_path']) == out / split / f'{info["img_id"]:06d}.png'
        assert got == expected[split]
        sample = dataset[0]['data_samples']  # through the config's pipeline
        boxes, ignored = expected[split][sample.img_id]
        assert len(sample.gt_instances) == boxes
        if split == 'train':
            assert len(sample.ignored_instances) == ignored
            assert sample.img_shape == (192, 480)  # (640, 192) with the aspect ratio kept


def test_refuses_a_non_empty_out_unless_forced(converted, kitti_root):
    out, _ = converted
    with pytest.raises(FileExistsError, match='--force'):
        create_synthcoco(str(kitti_root), str(out))
    (out / 'annotations' / 'instances_old.json').write_text('left from an earlier run')
    create_synthcoco(str(kitti_root), str(out), force=True)
    assert not (out / 'annotations' / 'instances_old.json').exists()
    # --force replaces only the converter's own output: a folder holding anything else is refused, untouched.
    (out / 'notes.txt').write_text('a file of the user')
    with pytest.raises(FileExistsError, match='notes.txt.*does not write'):
        create_synthcoco(str(kitti_root), str(out), force=True)
    assert (out / 'notes.txt').read_text() == 'a file of the user' and (out / 'annotations').is_dir()
    with pytest.raises(ValueError, match='must not be'):
        create_synthcoco(str(kitti_root), str(kitti_root.parent), force=True)


def test_bad_input_names_the_file(kitti_root, tmp_path):
    (kitti_root / 'training/image_2/000001.png').unlink()
    with pytest.raises(FileNotFoundError, match='000001.png'):
        create_synthcoco(str(kitti_root), str(tmp_path / 'a'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='--generate'):
        create_synthcoco(str(tmp_path / 'empty'), str(tmp_path / 'b'))
    with pytest.raises(FileExistsError, match='not an empty folder'):
        create_synthcoco(str(kitti_root / 'training'), str(tmp_path / 'c'), generate=True)


@pytest.mark.slow
def test_command_renders_a_missing_world_then_converts(tmp_path):
    src, out = tmp_path / 'synthkitti', tmp_path / 'synthcoco'
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/create_data.py'), 'synthetic-coco', '--src', str(src), '--out',
         str(out), '--num-train', '2', '--num-val', '1', '--seed', '1', '--workers', '1'],
        check=True, cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), capture_output=True, text=True)
    assert 'rendering the synthetic KITTI world' in result.stdout + result.stderr
    for split, ids in (('train', [0, 1]), ('val', [2])):
        coco = COCO(str(out / 'annotations' / f'instances_{split}.json'))
        assert sorted(coco.getImgIds()) == ids
        for idx in ids:
            names = read_label_file(src / 'training/label_2' / f'{idx:06d}.txt')['name']
            kept = sum(n in ('Car', 'Pedestrian', 'Cyclist') for n in names)
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[idx]))
            assert sum(not a['iscrowd'] for a in anns) == kept
            assert sum(a['iscrowd'] for a in anns) == 3 * sum(n == 'DontCare' for n in names)
            assert coco.loadImgs([idx])[0]['width'] == 1242
