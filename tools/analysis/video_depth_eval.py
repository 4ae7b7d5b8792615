"""Video depth metrics of per-frame predictions on a KITTI raw drive: AbsRel ... after one alignment per
sequence, and the temporal alignment error (TAE) with the drive's poses.

    python tools/analysis/video_depth_eval.py --gt DRIVE_DIR --pred PRED_DIR --alignment median \
        [--cam 2] [--gt-depth DIR] [--crop garg] [--min-depth 1e-3] [--max-depth 80] [--out metrics.json]

``DRIVE_DIR`` is ``<root>/<date>/<date>_drive_<n>_sync`` (the calibration in ``<date>``); its ground-truth
depth PNGs are found under ``<drive>/proj_depth/groundtruth/image_0<cam>`` in the KITTI depth folders next to
the raw ones (``<root>/../depth/{train,val}``, ``<root>/depth_completion/{train,val}`` ...) unless
``--gt-depth`` names the folder. ``PRED_DIR`` holds ``<frame:010d>.npy`` depth maps (or the ``depth_npy``
folder that ``tools/infer_video_depth.py`` writes there). The frames evaluated are those with both, in order;
the TAE needs a pose for each (``poses.txt`` of the synthetic drives, or the OXTS records) and is left out
with a note when they are missing. See :mod:`perception.evaluation.depth.video_metrics` for the definitions.
"""
import argparse
import glob
import json
import os
import os.path as osp
from typing import List, Optional

import numpy as np

from perception.datasets.kitti_raw import load_kitti_raw_calib
from perception.evaluation.depth.functional import CROPS, SCALINGS, format_metrics_table
from perception.evaluation.depth.video_metrics import evaluate_video_depth, kitti_raw_camera_poses
from perception.fileio import InvalidInputError, atomic_write
from perception.fileio.depth import read_depth_png


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--gt', required=True, help='KITTI raw drive folder <date>/<date>_drive_<n>_sync')
    parser.add_argument('--pred', required=True, help='folder of <frame>.npy depth maps')
    parser.add_argument('--alignment', choices=SCALINGS, default='median', help='fitted once per sequence')
    parser.add_argument('--pred-is-disparity', action='store_true',
                        help='predictions are disparities (square-root disparities for lsq-sqrt-disparity)')
    parser.add_argument('--cam', type=int, choices=(2, 3), default=2)
    parser.add_argument('--gt-depth', help='folder of the ground-truth depth PNGs (default: searched)')
    parser.add_argument('--crop', choices=CROPS, default='garg')
    parser.add_argument('--min-depth', type=float, default=1e-3)
    parser.add_argument('--max-depth', type=float, default=80.)
    parser.add_argument('--out', help='JSON file to write the metrics to')
    return parser.parse_args(argv)


def find_gt_depth(drive_dir: str, cam: int) -> str:
    """The ``proj_depth/groundtruth/image_0<cam>`` folder of a drive in the KITTI depth folders near it."""
    drive = osp.basename(osp.normpath(drive_dir))
    date_dir = osp.dirname(osp.abspath(drive_dir))
    tail = osp.join(drive, 'proj_depth', 'groundtruth', f'image_0{cam}')
    candidates = [osp.join(drive_dir, 'proj_depth', 'groundtruth', f'image_0{cam}')]
    for root in (osp.dirname(date_dir), osp.dirname(osp.dirname(date_dir))):
        candidates += sorted(glob.glob(osp.join(root, '*', '*', tail)))
    found = [c for c in candidates if osp.isdir(c)]
    if not found:
        raise FileNotFoundError(f'{drive_dir}: no {tail} found in the KITTI depth folders near it; give --gt-depth')
    return found[0]


class _NpyFrames:
    """Predictions loaded on access, so that the evaluation holds two frames at a time."""

    def __init__(self, paths: List[str]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, k: int) -> np.ndarray:
        pred = np.load(self.paths[k])
        if pred.ndim == 3 and pred.shape[0] == 1:
            pred = pred[0]
        if pred.ndim != 2:
            raise InvalidInputError(f'{self.paths[k]}: expected an (H, W) or (1, H, W) depth map, got shape '
                                    f'{pred.shape}')
        if not np.isfinite(pred).all():
            raise InvalidInputError(f'{self.paths[k]}: {int((~np.isfinite(pred)).sum())} NaN or infinite values')
        return pred


class _PngFrames(_NpyFrames):

    def __getitem__(self, k: int) -> np.ndarray:
        return read_depth_png(self.paths[k])


def evaluate_drive(drive_dir: str, pred_dir: str, alignment: str, cam: int = 2, gt_depth: Optional[str] = None,
                   **protocol) -> dict:
    """The metrics of :func:`evaluate_video_depth` on the frames of a drive that have both a prediction and
    ground truth, with ``frames``, and ``tae_note`` when the TAE could not be computed."""
    if osp.isdir(osp.join(pred_dir, 'depth_npy')):
        pred_dir = osp.join(pred_dir, 'depth_npy')
    gt_dir = gt_depth or find_gt_depth(drive_dir, cam)
    preds = {f[:-4]: osp.join(pred_dir, f) for f in os.listdir(pred_dir) if f.endswith('.npy')}
    if not preds:
        raise FileNotFoundError(f'{pred_dir}: no .npy prediction')
    stems = sorted(s for s in preds if osp.isfile(osp.join(gt_dir, f'{s}.png')))
    if not stems:
        raise FileNotFoundError(f'{pred_dir}: no prediction has a ground truth in {gt_dir}')
    bad = [s for s in stems if not s.isdigit()]
    if bad:
        raise InvalidInputError(f'{pred_dir}: prediction names must be frame numbers, got {bad[:3]}')
    frames = [int(s) for s in stems]
    calib = load_kitti_raw_calib(osp.dirname(osp.abspath(drive_dir)))
    note = None
    try:
        poses = kitti_raw_camera_poses(drive_dir, frames, cam) if len(frames) > 1 else None
    except (FileNotFoundError, ValueError) as error:
        poses, note = None, f'no TAE: {error}'
    result = evaluate_video_depth(_NpyFrames([preds[s] for s in stems]),
                                  _PngFrames([osp.join(gt_dir, f'{s}.png') for s in stems]), poses,
                                  calib.intrinsics(cam), scaling=alignment, names=[preds[s] for s in stems], **protocol)
    result['frames'] = frames
    if note:
        result['tae_note'] = note
    return result


def main(argv=None) -> None:
    args = parse_args(argv)
    result = evaluate_drive(args.gt, args.pred, args.alignment, args.cam, args.gt_depth, crop=args.crop,
                            min_depth=args.min_depth, max_depth=args.max_depth,
                            pred_is_disparity=args.pred_is_disparity)
    print(f'{len(result["frames"])} frames, alignment {args.alignment} (scale {result["scale"]:.4f}, '
          f'shift {result["shift"]:.4f}) per sequence')
    print(format_metrics_table(result))
    print(f'TAE {result["tae"]:.4f}' if 'tae' in result else result.get('tae_note', 'no TAE: one frame'))
    if args.out:

        def write(tmp: str) -> None:
            with open(tmp, 'w') as f:
                json.dump(result, f, indent=2, allow_nan=False)

        atomic_write(args.out, write)


if __name__ == '__main__':
    main()
