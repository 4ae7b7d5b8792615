"""``tools/test.py --show-dir`` for multi-view 3D detectors (OPEN, StreamPETR): one picture per nuScenes sample."""
from typing import Sequence

import mmcv
import numpy as np
from mmdet3d.structures import Det3DDataSample
from mmengine.fileio import get

from perception.registry import HOOKS
from perception.visualization.multiview import draw_multiview_frame

from .visualization_hook import Mono3DVisualizationHook


@HOOKS.register_module()
class MultiViewVisualizationHook(Mono3DVisualizationHook):
    """Draws each test sample's predicted LiDAR-frame boxes, and its ground truth, on every ORIGINAL camera image
    with the original matrices (``lidar2cam``, ``ori_cam2img``), tiled, with the bird's-eye view beside
    (:func:`draw_multiview_frame`); one ``<sample token>.png`` per sample. Arguments as
    :class:`Mono3DVisualizationHook` (``bev_range``: metres around the LiDAR)."""

    def draw_sample(self, data_sample: Det3DDataSample, classes: Sequence[str]) -> np.ndarray:
        meta = data_sample.metainfo
        if 'pred_instances_3d' not in data_sample:
            raise ValueError(f'sample {meta.get("token")}: the model predicted no 3D boxes (pred_instances_3d)')
        images = []
        for path in meta['img_path']:
            image = mmcv.imfrombytes(get(path, backend_args=self.backend_args), flag='color')
            if image is None:
                raise ValueError(f'{path}: cannot decode the image')
            images.append(image)
        pred = data_sample.pred_instances_3d
        keep = pred.scores_3d >= self.score_thr
        boxes = pred.bboxes_3d[keep.to(pred.bboxes_3d.device)].to('cpu')
        names = [classes[label] for label in pred.labels_3d[keep].cpu().numpy()]
        gt_boxes = None
        eval_ann_info = data_sample.get('eval_ann_info')
        if self.draw_gt and eval_ann_info is not None:
            gt_boxes = eval_ann_info['gt_bboxes_3d']
        # The test pipelines do not move the 3D scene: lidar2cam is the original one.
        return draw_multiview_frame(images, meta['lidar2cam'], meta['ori_cam2img'], boxes, names,
                                    pred.scores_3d[keep].cpu().numpy(), gt_boxes=gt_boxes, bev_range=self.bev_range)

    def picture_name(self, metainfo: dict) -> str:
        return str(metainfo['token'])
