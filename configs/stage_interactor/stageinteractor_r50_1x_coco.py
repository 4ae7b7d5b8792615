# StageInteractor R50 1x on COCO: 6 stages, 100 queries, 1333x800, AdamW 2.5e-5, 12 epochs.
# Backbone, ChannelMapper, Hungarian assigner and losses are mmdet's; the decoder is perception's.
_base_ = ['../_base_/models/stageinteractor_r50.py', '../_base_/datasets/coco_detection.py']

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2.5e-5, weight_decay=0.0001),
    clip_grad=dict(max_norm=1.0, norm_type=2))
# 8 GPUs x 2 images.
auto_scale_lr = dict(enable=False, base_batch_size=16)
