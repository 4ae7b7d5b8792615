# Plain RetinaNet R50-FPN 1x (all mmdet components): the baseline the SEPC variants build on.
_base_ = [
    '../_base_/models/retinanet_r50_fpn.py', '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/mmdet-schedule-1x.py'
]
