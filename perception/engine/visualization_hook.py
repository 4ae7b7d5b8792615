"""``tools/test.py --show-dir`` for monocular 3D detectors: the project's picture of every test frame."""
import os.path as osp
from pathlib import Path
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmdet3d.structures import Det3DDataSample
from mmengine.fileio import get
from mmengine.hooks import Hook
from mmengine.utils import mkdir_or_exist

from perception.registry import HOOKS
from perception.visualization import draw_mono3d_frame


def frame_name(metainfo: dict) -> str:
    """The KITTI frame id of a data sample (``frame_id``, six digits), else the stem of its image file."""
    if metainfo.get('frame_id') is not None:
        return f"{int(metainfo['frame_id']):06d}"
    return Path(metainfo['img_path']).stem


@HOOKS.register_module()
class Mono3DVisualizationHook(Hook):
    """Draws each test frame's predicted 3D boxes, and its ground truth, on the original image with the original
    camera matrix (``ori_cam2img``), with the bird's-eye view beside (:func:`draw_mono3d_frame`).

    Unlike mmdet3d's ``Det3DVisualizationHook``, which projects with the packed ``cam2img`` (that of the resized,
    cropped network input) onto the file's image, the boxes land where the objects are: predictions
    (``pred_instances_3d``) are in the camera frame of the original image. The ground truth is the data sample's
    ``eval_ann_info`` (the dataset's classes, no DontCare), present when the dataset loads it in test mode.

    Args:
        draw: draw at all; ``tools/test.py --show-dir/--show`` sets it.
        score_thr: draw predictions scoring at least this (the model's ``test_cfg.score_thr`` has already
            dropped those below its own).
        draw_gt: draw the ground truth too (thin, white).
        show: show each picture in a window.
        wait_time: seconds a shown picture stays (0: until a key is pressed).
        test_out_dir: folder of the PNGs, one ``<frame id>.png`` per frame; a relative path is taken under
            ``<work_dir>/<timestamp>/`` as mmdet's hook does.
        bev_range: metres ahead (and across) covered by the bird's-eye view.
        backend_args: ``mmengine.fileio.get`` arguments to read the images.
    """

    def __init__(self, draw: bool = False, score_thr: float = 0.1, draw_gt: bool = True, show: bool = False,
                 wait_time: float = 0., test_out_dir: Optional[str] = None, bev_range: float = 60.,
                 backend_args: Optional[dict] = None) -> None:
        self.draw = draw
        self.score_thr = score_thr
        self.draw_gt = draw_gt
        self.show = show
        self.wait_time = wait_time
        self.test_out_dir = test_out_dir
        self.bev_range = bev_range
        self.backend_args = backend_args
        self.out_dir = None

    def before_test(self, runner) -> None:
        if self.draw and self.test_out_dir is not None:
            self.out_dir = osp.join(runner.work_dir, runner.timestamp, self.test_out_dir)
            mkdir_or_exist(self.out_dir)

    def draw_sample(self, data_sample: Det3DDataSample, classes: Sequence[str]) -> np.ndarray:
        """The picture of one data sample with ``pred_instances_3d``: (H, W + H, 3) BGR uint8."""
        img_path = data_sample.metainfo['img_path']
        if 'pred_instances_3d' not in data_sample:
            raise ValueError(f'{img_path}: the model predicted no 3D boxes (pred_instances_3d); '
                             f'{type(self).__name__} draws monocular 3D detections only')
        image = mmcv.imfrombytes(get(img_path, backend_args=self.backend_args), flag='color')
        if image is None:
            raise ValueError(f'{img_path}: cannot decode the image')
        pred = data_sample.pred_instances_3d
        keep = (pred.scores_3d >= self.score_thr).cpu().numpy()
        boxes = pred.bboxes_3d.tensor[:, :7].cpu().numpy()[keep]
        names = [classes[label] for label in pred.labels_3d.cpu().numpy()[keep]]
        gt_boxes = None
        eval_ann_info = data_sample.get('eval_ann_info')
        if self.draw_gt and eval_ann_info is not None:
            gt_boxes = eval_ann_info['gt_bboxes_3d'].tensor[:, :7].numpy()
        return draw_mono3d_frame(image, data_sample.metainfo['ori_cam2img'], boxes, names,
                                 pred.scores_3d.cpu().numpy()[keep], gt_boxes=gt_boxes, bev_range=self.bev_range)

    def picture_name(self, metainfo: dict) -> str:
        """The file name (without extension) of a test sample's picture."""
        return frame_name(metainfo)

    def after_test_iter(self, runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence[Det3DDataSample]) -> None:
        if not self.draw:
            return
        classes = runner.test_dataloader.dataset.metainfo['classes']
        for data_sample in outputs:
            picture = self.draw_sample(data_sample, classes)
            name = self.picture_name(data_sample.metainfo)
            if self.show:
                mmcv.imshow(picture, win_name=name, wait_time=int(self.wait_time * 1000))
            if self.out_dir is not None:
                path = osp.join(self.out_dir, f'{name}.png')
                if not mmcv.imwrite(picture, path):
                    raise OSError(f'{path}: cannot write the picture')
