# CPU-sized plain RetinaNet (R18, 64-channel FPN and head) on the synthetic world, 640x192: the
# baseline next to which SEPC-lite shows its effect (retinanet_r18_fpn_sepc-lite_synthcoco.py).
_base_ = ['../_base_/models/retinanet_r50_fpn.py', '../_base_/datasets/synthcoco_detection.py']

channels = 64
fpn = dict(
    type='mmdet.FPN',
    in_channels=[64, 128, 256, 512],
    out_channels=channels,
    start_level=1,
    add_extra_convs='on_input',
    num_outs=5)
model = dict(
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=fpn,
    bbox_head=dict(num_classes=3, in_channels=channels, feat_channels=channels))

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=24, val_interval=6)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=200),
    dict(type='MultiStepLR', begin=0, end=24, by_epoch=True, milestones=[16, 22], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
