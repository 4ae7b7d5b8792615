# CPU-sized StageInteractor on the synthetic world: R18 from scratch, 128 channels, 6 stages of 50 queries,
# 640x192. Schedule sized for about 30 minutes on one CPU thread (4.6 s per batch of 4): 2 epochs of the
# 800 frames, x0.1 for the last quarter, validated at the end.
#   OMP_NUM_THREADS=1 python tools/train.py configs/stage_interactor/stageinteractor_r18_2e_synthcoco.py
_base_ = ['../_base_/models/stageinteractor_r50.py', '../_base_/datasets/synthcoco_detection.py']

dim = 128
model = dict(
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=dim),
    bbox_head=dict(
        num_classes=3,
        num_queries=50,
        dim=dim,
        out_points=32,
        ffn_channels=512,
        num_heads=4),
    test_cfg=dict(max_per_img=50))

max_iters = 400  # 2 epochs
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[300], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.0001),
    clip_grad=dict(max_norm=1.0, norm_type=2))
