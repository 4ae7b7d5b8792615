"""Render the README picture of the synthetic world: frames with their projected labels and depth maps.

    python tools/analysis/render_synthetic_preview.py [--out docs/images/synthetic_world.png] [--seed 0]

Each row is one KITTI-format frame: image_2 with the label_2 boxes drawn by the project's visualiser,
next to its rendered depth and a bird's-eye view of the labels over the LiDAR sweep.
"""
import argparse
from pathlib import Path

import cv2
import numpy as np

from perception.datasets.synthetic import KittiRig, render_kitti_frame
from perception.visualization import camera_boxes_to_bev, colorize_depth, draw_bev, draw_camera_boxes3d


def preview_row(seed: int, index: int, rig: KittiRig) -> np.ndarray:
    frame = render_kitti_frame(seed, index, rig)
    labels = frame.labels
    keep = labels['name'] != 'DontCare'
    h, w, l = labels['dimensions'][keep].T
    boxes = np.concatenate([labels['location'][keep], np.stack([l, h, w], 1), labels['rotation_y'][keep, None]], 1)
    image = draw_camera_boxes3d(frame.left.image[..., ::-1], boxes, rig.P(2), labels=list(labels['name'][keep]))
    depth = colorize_depth(np.where(frame.left.depth < 80, frame.left.depth, 0), min_depth=3, max_depth=80)
    points = frame.scan.points @ rig.velo2rect[:3, :3].T + rig.velo2rect[:3, 3]
    # BEV in the camera's ground plane: forward = z, left = -x.
    bev = draw_bev(camera_boxes_to_bev(boxes), np.stack([points[:, 2], -points[:, 0], -points[:, 1]], 1),
                   labels=list(labels['name'][keep]), x_range=(0, 60), y_range=(-30, 30), resolution=0.16)
    bev = cv2.resize(bev, (rig.height, rig.height), interpolation=cv2.INTER_AREA)
    return np.concatenate([image, depth, bev], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='docs/images/synthetic_world.png')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--frames', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--scale', type=float, default=0.5, help='shrink the picture')
    args = parser.parse_args()
    rig = KittiRig()
    picture = np.concatenate([preview_row(args.seed, i, rig) for i in args.frames], axis=0)
    picture = cv2.resize(picture, None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_AREA)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, picture)
    print(f'wrote {args.out} ({picture.shape[1]}x{picture.shape[0]})')


if __name__ == '__main__':
    main()
