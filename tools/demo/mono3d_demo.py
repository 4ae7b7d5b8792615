"""Detect 3D objects in one image and draw them:

    python tools/demo/mono3d_demo.py IMAGE CALIB CONFIG CKPT --out PNG [--device cpu] [--score-thr 0.2]

CALIB is a KITTI calibration file (its ``P2`` projects into the image). The PNG shows the projected 3D
boxes with class and score, and the bird's-eye view beside it.
"""
import argparse
import os
import os.path as osp

import cv2

from perception.apis import inference_mono3d, init_model
from perception.fileio import read_calib_file
from perception.visualization import draw_mono3d_frame


def parse_args():
    parser = argparse.ArgumentParser(description='Monocular 3D detection on one image')
    parser.add_argument('image', help='image file')
    parser.add_argument('calib', help='KITTI calibration file (P2 projects into the image)')
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', help='local checkpoint')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda:0' ...")
    parser.add_argument('--score-thr', type=float, default=0.2,
                        help='keep detections whose class probability reaches this (the model\'s score_thr)')
    return parser.parse_args()


def main():
    args = parse_args()
    out_dir = osp.dirname(osp.abspath(args.out))
    if not osp.isdir(out_dir):
        raise FileNotFoundError(f'--out {args.out}: the folder {out_dir} does not exist (checked before inference)')
    if not os.access(out_dir, os.W_OK):
        raise PermissionError(f'--out {args.out}: the folder {out_dir} is not writable (checked before inference)')
    if not cv2.haveImageWriter(args.out):
        raise ValueError(f'--out {args.out}: OpenCV cannot write this file type; use .png or .jpg')
    calib = read_calib_file(args.calib, required=('P2', ))
    image = cv2.imread(args.image)
    if image is None:
        raise ValueError(f'{args.image}: cannot read the image')
    model = init_model(args.config, args.checkpoint, device=args.device,
                       cfg_options={'model.test_cfg.score_thr': args.score_thr})
    bboxes_3d, scores, labels = inference_mono3d(model, image, calib['P2'])
    boxes, scores, labels = bboxes_3d.tensor.numpy(), scores.numpy(), labels.numpy()
    classes = model.dataset_meta.get('classes') or [str(i) for i in range(int(labels.max(initial=0)) + 1)]
    names = [classes[label] for label in labels]
    for name, score, box in zip(names, scores, boxes):
        print(f'{name:>10s} {score:.2f}  x {box[0]:6.2f} y {box[1]:5.2f} z {box[2]:6.2f} m  '
              f'l {box[3]:.2f} h {box[4]:.2f} w {box[5]:.2f} m  yaw {box[6]:+.2f} rad')

    canvas = draw_mono3d_frame(image, calib['P2'], boxes, names, scores, bev_range=70.)
    if not cv2.imwrite(args.out, canvas):
        raise OSError(f'{args.out}: cannot write the image')
    print(f'{len(boxes)} detections drawn to {args.out}')


if __name__ == '__main__':
    main()
