"""KITTI object frames (left images + 2D boxes) -> COCO detection files, for the 2D detector configs.

Written for the synthetic KITTI world (``configs/_base_/datasets/synthcoco_detection.py``), it reads any
folder in the KITTI object layout: the frames of ``ImageSets/{train,val}.txt`` under ``training/``.
Output (``out/train`` and ``out/val`` hold hard links to ``training/image_2``, or copies where a link
cannot be made)::

    out/annotations/instances_{train,val}.json
    out/{train,val}/000000.png

Label rows become COCO annotations as follows:

* ``Car``, ``Pedestrian``, ``Cyclist``: one annotation each, category ids 1, 2, 3 in the configs'
  ``classes`` order (mmdet's ``CocoDataset`` labels categories in file order, whatever ``classes`` says).
  Truncated and occluded objects are kept. ``bbox`` is ``[x1, y1, x2 - x1, y2 - y1]`` of the label's box
  clipped to the image ``[0, W] x [0, H]``, ``area`` its ``w * h``.
* ``DontCare``: one ``iscrowd=1`` annotation per category, with the region's box. KITTI marks regions
  holding objects too small or too hidden to label (in the synthetic world: fewer than 40 visible
  pixels or lower than 10 px), of any class. The KITTI devkit does not count detections inside them as
  false positives; COCOeval does the same for crowd boxes, but per category, hence one per category.
  mmdet loads them as ``ignore_flag=1`` instances (``ignored_instances``, left out of the losses),
  so training does not learn these objects as background either.
* ``Van``, ``Truck``, ``Person_sitting``, ``Tram``, ``Misc``: dropped (counted), as mmdet3d's 2D export
  of KITTI does: they are not among the three classes.

Image ids are the KITTI frame numbers, annotation ids count from 1 (COCOeval takes id 0 for "unmatched").
"""
import json
import os
import os.path as osp
import shutil
import time
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log
from mmengine.utils import track_iter_progress

from perception.datasets.synthetic.kitti_object import generate_kitti_object
from perception.datasets.synthetic.parallel import prepare_output_dir
from perception.fileio import atomic_write
from perception.fileio.kitti import read_label_file
from .kitti_converter import frame_file, read_image_shape, read_imageset

# Category ids 1, 2, 3: the ``classes`` order of the synthcoco configs.
COCO_CLASSES = ('Car', 'Pedestrian', 'Cyclist')
CATEGORIES = [dict(id=i, name=name, supercategory='none') for i, name in enumerate(COCO_CLASSES, start=1)]
IGNORE_NAME = 'DontCare'
SPLITS = ('train', 'val')


def frame_annotations(labels: Dict, image_id: int, width: int, height: int,
                      first_id: int) -> Tuple[List[dict], Counter]:
    """COCO annotations of one frame's KITTI label rows.

    Args:
        labels: the dict of :func:`perception.fileio.kitti.read_label_file`.
        image_id: COCO image id of the frame.
        width, height: image size in pixels (boxes are clipped to it).
        first_id: the id of the first annotation written.

    Returns:
        the annotations, and counts by label name of the rows ``kept``, ``ignored`` (DontCare),
        ``dropped`` (other classes) and ``outside`` (empty once clipped) as keys ``(what, name)``.
    """
    annotations, counts = [], Counter()
    for name, (x1, y1, x2, y2) in zip(labels['name'], labels['bbox'].tolist()):
        name = str(name)
        if name == IGNORE_NAME:
            category_ids, what = [c['id'] for c in CATEGORIES], 'ignored'
        elif name in COCO_CLASSES:
            category_ids, what = [COCO_CLASSES.index(name) + 1], 'kept'
        else:
            counts['dropped', name] += 1
            continue
        x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
        y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
        w, h = x2 - x1, y2 - y1
        if w <= 0 or h <= 0:
            counts['outside', name] += 1
            continue
        counts[what, name] += 1
        for category_id in category_ids:
            annotations.append(dict(id=first_id + len(annotations), image_id=image_id, category_id=category_id,
                                    bbox=[x1, y1, w, h], area=w * h, iscrowd=int(what == 'ignored')))
    return annotations, counts


class _Placer:
    """Puts files by hard link, switching to copies for good after the first link that fails (other disk)."""

    def __init__(self):
        self.link = True

    def __call__(self, src: str, dst: str) -> None:
        if self.link:
            try:
                os.link(src, dst)
                return
            except OSError as e:
                print_log(f'cannot hard-link {src} to {dst} ({e}): copying the images instead', 'current')
                self.link = False
        shutil.copyfile(src, dst)


def _dump_json(obj, path: str) -> None:
    """Write JSON atomically, so an interrupted run never leaves a truncated annotation file."""

    def write(tmp: str) -> None:
        with open(tmp, 'w') as f:
            json.dump(obj, f)

    atomic_write(path, write)


def convert_split(src: str, out: str, split: str, place: Optional[_Placer] = None) -> Dict[str, object]:
    """Write ``out/{split}/`` and ``out/annotations/instances_{split}.json`` for ``src/ImageSets/{split}.txt``.

    Returns:
        counts: ``images``, ``annotations`` (all, crowd included), ``per_class`` (kept boxes by class),
        ``dontcare`` regions, ``ignore_boxes`` (their crowd annotations), ``dropped`` (by name) and
        ``outside`` (boxes empty once clipped, by name).

    Raises:
        FileNotFoundError: a listed frame lacks its image or label file (the message names it).
        ValueError: an unreadable image or a malformed label row (the message names file and line).
    """
    place = place or _Placer()
    ids = read_imageset(osp.join(src, 'ImageSets', f'{split}.txt'))
    image_dir = osp.join(out, split)
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(osp.join(out, 'annotations'), exist_ok=True)
    print_log(f'{split}: {len(ids)} frames from {src}', 'current')
    images, annotations, counts = [], [], Counter()
    for idx in track_iter_progress(ids):
        image_path = frame_file(src, 'training', 'image_2', idx, '.png')
        label_path = frame_file(src, 'training', 'label_2', idx, '.txt')
        height, width = read_image_shape(image_path)
        file_name = osp.basename(image_path)
        place(image_path, osp.join(image_dir, file_name))
        images.append(dict(id=idx, file_name=file_name, width=width, height=height))
        frame_anns, frame_counts = frame_annotations(read_label_file(label_path, with_score=False), idx, width,
                                                     height, first_id=len(annotations) + 1)
        annotations += frame_anns
        counts += frame_counts
    coco = dict(info=dict(description=f'KITTI-layout frames of {src}, split {split}, as COCO boxes'),
                images=images, annotations=annotations, categories=CATEGORIES)
    _dump_json(coco, osp.join(out, 'annotations', f'instances_{split}.json'))

    def by_name(what):
        return {name: n for (w, name), n in sorted(counts.items()) if w == what}

    return dict(images=len(images), annotations=len(annotations),
                per_class={name: counts['kept', name] for name in COCO_CLASSES},
                dontcare=counts['ignored', IGNORE_NAME],
                ignore_boxes=sum(a['iscrowd'] for a in annotations),
                dropped=by_name('dropped'), outside=by_name('outside'))


def has_kitti_frames(src: str, splits: Sequence[str] = SPLITS) -> bool:
    """Whether ``src`` holds the split lists and the image/label folders of the KITTI object layout."""
    return (all(osp.isfile(osp.join(src, 'ImageSets', f'{s}.txt')) for s in splits)
            and all(osp.isdir(osp.join(src, 'training', d)) for d in ('image_2', 'label_2')))


def create_synthcoco(src: str, out: str, generate: bool = False, num_train: int = 400, num_val: int = 100,
                     seed: int = 0, workers: int = 2, force: bool = False) -> Dict[str, Dict[str, object]]:
    """Convert the train and val frames of the KITTI-layout folder ``src`` to COCO files in ``out``.

    When ``src`` does not exist, or is an empty folder and ``generate`` is set, the synthetic KITTI world of
    ``num_train + num_val`` frames and ``seed`` is rendered into it first (as ``synthetic-kitti`` does).

    Args:
        src: KITTI object layout (``ImageSets/``, ``training/image_2``, ``training/label_2``).
        out: output folder; a non-empty one is refused unless ``force``, which replaces an earlier output
            (``annotations/``, ``train/``, ``val/``; a folder holding anything else is refused).
        generate: render the synthetic world into ``src`` when it is an empty folder (a missing one is
            always rendered).
        num_train, num_val, seed, workers: the synthetic world to render, if one is.
        force: replace an earlier output in ``out``.

    Returns:
        dict split -> the counts of :func:`convert_split`.
    """
    if osp.realpath(out) == osp.realpath(src) or osp.realpath(src).startswith(osp.realpath(out) + os.sep):
        raise ValueError(f'--out {out} must not be --src {src} or hold it: --force replaces its content')
    generate_first = not has_kitti_frames(src)
    if generate_first and osp.exists(src):
        if not generate:
            raise FileNotFoundError(f'{src}: no KITTI object frames (ImageSets/{{train,val}}.txt, '
                                    'training/{image_2,label_2}); pass --generate to render the synthetic world')
        if not osp.isdir(src) or os.listdir(src):
            raise FileExistsError(f'{src}: no KITTI object frames, and not an empty folder: --generate renders only '
                                  'into an empty or new one; remove it or choose another --src')
    prepare_output_dir(out, force, ('annotations', *SPLITS))
    if generate_first:
        print_log(f'{src}: no KITTI frames; rendering the synthetic KITTI world there ({num_train} train + '
                  f'{num_val} val frames, seed {seed}, {workers} workers)', 'current')
        start = time.perf_counter()
        counts = generate_kitti_object(src, num_train=num_train, num_val=num_val, seed=seed, workers=workers)
        print_log(f'wrote {src}: ' + ', '.join(f'{v} {k}' for k, v in counts.items()) +
                  f' in {time.perf_counter() - start:.1f} s', 'current')
    place = _Placer()
    results = {}
    for split in SPLITS:
        c = results[split] = convert_split(src, out, split, place)
        kept = ', '.join(f'{n} {name}' for name, n in c['per_class'].items())
        dropped = ', '.join(f'{n} {name}' for name, n in c['dropped'].items()) or 'none'
        message = (f'{split}: {c["images"]} images, {c["annotations"] - c["ignore_boxes"]} boxes ({kept}), '
                   f'{c["dontcare"]} DontCare -> {c["ignore_boxes"]} iscrowd ignore boxes; dropped rows: {dropped}')
        if c['outside']:
            message += '; empty once clipped: ' + ', '.join(f'{n} {name}' for name, n in c['outside'].items())
        print_log(message, 'current')
    mode = 'hard links to' if place.link else 'copies of'
    print_log(f'wrote {out}/annotations/instances_{{{",".join(SPLITS)}}}.json; images are {mode} '
              f'{src}/training/image_2', 'current')
    return results
