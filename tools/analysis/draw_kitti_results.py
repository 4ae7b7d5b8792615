"""Draw KITTI result files next to the ground truth: projected 3D boxes on the image (predictions in
their class colour with scores, ground truth in white) and the bird's-eye view beside it.

    python tools/analysis/draw_kitti_results.py --root data/synthkitti --results DIR --out FILE.png \
        [--frames 000800 000801 ...] [--num 4] [--score-thr 0.2]

``DIR`` holds ``<frame>.txt`` files in the KITTI format (what ``KittiMetric`` writes with
``outfile_prefix``). Without ``--frames``, the first ``--num`` frames of ``DIR`` are drawn. One PNG
stacks one row per frame.
"""
import argparse
import os.path as osp
from pathlib import Path

import cv2
import numpy as np

from perception.evaluation.kitti.evaluate import label_camera_boxes
from perception.fileio import read_calib_file, read_label_file
from perception.visualization import draw_mono3d_frame

WHITE = (255, 255, 255)


def label_boxes(labels: dict) -> np.ndarray:
    """(N, 7) camera boxes (x, y, z, l, h, w, ry) of one KITTI label dict (dimensions are h, w, l)."""
    return label_camera_boxes([labels])


def draw_frame(image: np.ndarray, calib: dict, gt: dict, det: dict, score_thr: float = 0.2,
               bev_range: float = 60.) -> np.ndarray:
    """One row: the image with ground truth (white) and detections, then the BEV at the image's height."""
    keep_gt = gt['name'] != 'DontCare'
    keep = det['score'] >= score_thr
    return draw_mono3d_frame(image, calib['P2'], label_boxes(det)[keep], det['name'][keep], det['score'][keep],
                             gt_boxes=label_boxes(gt)[keep_gt], bev_range=bev_range)


def draw_results(root: str, results: str, out: str, frames=None, num: int = 4, score_thr: float = 0.2,
                 split_dir: str = 'training') -> str:
    """Draw the frames' rows into ``out``; returns ``out``."""
    if frames is None:
        frames = sorted(p.stem for p in Path(results).glob('*.txt'))[:num]
    if not frames:
        raise FileNotFoundError(f'{results}: no KITTI result files (<frame>.txt)')
    rows = []
    for frame in frames:
        base = osp.join(root, split_dir)
        image = cv2.imread(osp.join(base, 'image_2', f'{frame}.png'))
        if image is None:
            raise FileNotFoundError(f'{base}/image_2/{frame}.png: cannot read the image')
        row = draw_frame(image, read_calib_file(osp.join(base, 'calib', f'{frame}.txt')),
                         read_label_file(osp.join(base, 'label_2', f'{frame}.txt')),
                         read_label_file(osp.join(results, f'{frame}.txt'), with_score=True), score_thr)
        cv2.putText(row, frame, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, WHITE, 1, cv2.LINE_AA)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    if not cv2.imwrite(out, np.concatenate(rows, 0)):
        raise OSError(f'{out}: cannot write the image')
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--root', required=True, help='KITTI-layout dataset root (training/image_2, ...)')
    parser.add_argument('--results', required=True, help='folder of KITTI result files')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--frames', nargs='*', help='frame ids (default: the first --num results)')
    parser.add_argument('--num', type=int, default=4)
    parser.add_argument('--score-thr', type=float, default=0.2)
    args = parser.parse_args()
    print(draw_results(args.root, args.results, args.out, args.frames, args.num, args.score_thr))


if __name__ == '__main__':
    main()
