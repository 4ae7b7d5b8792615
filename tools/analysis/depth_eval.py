"""Evaluate depth predictions (.npy) against KITTI depth ground-truth PNGs.

    python tools/analysis/depth_eval.py --gt-dir GT --pred-dir PRED --crop garg --scaling median \
        --min-depth 1e-3 --max-depth 80 --out metrics.json

Every ``GT/<stem>.png`` (uint16, metres * 256, 0 = no data) needs a ``PRED/<stem>.npy`` depth map in
metres, (H, W) or (1, H, W), at any resolution of the same aspect ratio; it is resized to the ground
truth bilinearly with half-pixel centres. The metrics are averaged over images, printed, and written
as JSON (standard JSON: never NaN or Infinity).

A prediction must be a finite real map, and positive where it is evaluated unless a least-squares protocol
aligns it (see :mod:`perception.evaluation.depth.functional`); anything else is refused with an error
naming the file.
"""
import argparse
import json
import os
import os.path as osp
import warnings
from typing import Dict, List

import numpy as np

from perception.evaluation.depth.functional import (CROPS, SCALINGS, average_metrics, evaluate_depth,
                                                    format_metrics_table)
from perception.fileio import InvalidInputError
from perception.fileio.depth import read_depth_png

# A prediction whose aspect ratio differs more than this from the ground truth's is not a resized copy of
# it (a transposed map, another camera's crop), and resizing would hide the mistake.
ASPECT_TOLERANCE = 0.05


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--gt-dir', required=True, help='folder of KITTI depth PNGs')
    parser.add_argument(
        '--pred-dir', required=True, help='folder of .npy depth maps with the same stems')
    parser.add_argument('--crop', choices=CROPS, default='garg')
    parser.add_argument('--scaling', choices=SCALINGS, default='median')
    parser.add_argument('--min-depth', type=float, default=1e-3)
    parser.add_argument('--max-depth', type=float, default=80.)
    parser.add_argument(
        '--scale-factor',
        type=float,
        default=1.,
        help='fixed factor applied to the predictions first (5.4 for monodepth2 stereo models)')
    parser.add_argument('--out', help='JSON file to write the metrics to')
    return parser.parse_args(argv)


def load_prediction(path: str, gt_shape) -> np.ndarray:
    """(h, w) float64 prediction from ``path``, checked against the (H, W) ground-truth shape."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'missing prediction {path} for the ground truth of the same stem')
    try:
        pred = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy reports a bad header, a truncated file or pickled objects in several types
        raise InvalidInputError(f'{path}: not a readable .npy depth map: {type(e).__name__}: {e}') from e
    if not isinstance(pred, np.ndarray):
        raise InvalidInputError(f'{path}: expected one array (.npy), got {type(pred).__name__}')
    with open(path, 'rb') as f:
        head = f.read(12)
    header = 10 + int.from_bytes(head[8:10], 'little') if head[6] == 1 else 12 + int.from_bytes(head[8:12], 'little')
    if osp.getsize(path) != header + pred.nbytes:
        raise InvalidInputError(f'{path}: {osp.getsize(path)} bytes, but its header describes {header + pred.nbytes} '
                                f'(shape {pred.shape}, dtype {pred.dtype}): a damaged .npy')
    if pred.dtype.kind not in 'fiu':
        raise InvalidInputError(f'{path}: expected a real-valued depth map, got dtype {pred.dtype}')
    if pred.ndim == 3 and pred.shape[0] == 1:
        pred = pred[0]
    if pred.ndim != 2 or 0 in pred.shape:
        raise InvalidInputError(f'{path}: expected an (H, W) or (1, H, W) depth map, got shape {pred.shape}')
    gt_aspect, pred_aspect = gt_shape[1] / gt_shape[0], pred.shape[1] / pred.shape[0]
    if abs(pred_aspect / gt_aspect - 1) > ASPECT_TOLERANCE:
        raise InvalidInputError(f'{path}: shape {pred.shape} does not match the ground truth {tuple(gt_shape)} '
                                f'(aspect ratio {pred_aspect:.3f} vs {gt_aspect:.3f})')
    if not np.isfinite(pred).all():
        raise InvalidInputError(f'{path}: {int((~np.isfinite(pred)).sum())} NaN or infinite values')
    return pred.astype(np.float64)


def evaluate_folder(gt_dir: str, pred_dir: str, **protocol) -> Dict[str, float]:
    """Mean metrics of the predictions in ``pred_dir`` against every PNG of ``gt_dir``."""
    stems: List[str] = sorted(f[:-4] for f in os.listdir(gt_dir) if f.endswith('.png'))
    if not stems:
        raise FileNotFoundError(f'no ground-truth .png in {gt_dir}')
    per_image = []
    for stem in stems:
        gt = read_depth_png(osp.join(gt_dir, f'{stem}.png'))
        pred_path = osp.join(pred_dir, f'{stem}.npy')
        pred = load_prediction(pred_path, gt.shape)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                per_image.append(evaluate_depth(pred, gt, **protocol))
            for warning in caught:
                warnings.warn(f'{pred_path}: {warning.message}')
        except ValueError as err:
            kind = InvalidInputError if isinstance(err, InvalidInputError) else ValueError
            raise kind(f'{pred_path}: {err}') from err
    return average_metrics(per_image)


def main(argv=None) -> Dict[str, float]:
    args = parse_args(argv)
    metrics = evaluate_folder(
        args.gt_dir,
        args.pred_dir,
        crop=args.crop,
        scaling=args.scaling,
        min_depth=args.min_depth,
        max_depth=args.max_depth,
        scale_factor=args.scale_factor)
    print(f'crop={args.crop} scaling={args.scaling} depth range ({args.min_depth}, {args.max_depth})')
    print(format_metrics_table(metrics))
    if args.out:
        out_dir = osp.dirname(osp.abspath(args.out))
        os.makedirs(out_dir, exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(metrics, f, indent=1, allow_nan=False)
    return metrics


if __name__ == '__main__':
    main()
