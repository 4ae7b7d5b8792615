# Plain FreeAnchor R50-FPN 1x (mmdet's FreeAnchorRetinaHead): the baseline of the FreeAnchor SEPC variants.
_base_ = ['./retinanet_r50_fpn_1x_coco.py']

model = dict(
    bbox_head=dict(
        type='mmdet.FreeAnchorRetinaHead',
        bbox_coder=dict(target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_bbox=dict(_delete_=True, type='mmdet.SmoothL1Loss', beta=0.11, loss_weight=0.75)))
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
