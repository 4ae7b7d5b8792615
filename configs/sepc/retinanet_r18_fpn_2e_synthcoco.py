# CPU-sized plain RetinaNet (R18 from scratch, 64-channel FPN and head) on the synthetic world, 640x192:
# the baseline next to which SEPC-lite shows its effect (retinanet_r18_fpn_sepc-lite_2e_synthcoco.py).
# Schedule sized so that SEPC-lite, on the same schedule, trains within 30 minutes on one CPU thread (4.2 s
# per batch of 4; plain RetinaNet 3 s): 2 epochs of the 800 frames, cosine decay after a 100-iteration
# warm-up, validated at the end.
#   python tools/create_data.py synthetic-coco --out data/synthcoco
#   OMP_NUM_THREADS=1 python tools/train.py configs/sepc/retinanet_r18_fpn_2e_synthcoco.py
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
    # Half of COCO's anchor sizes (16-25 px on stride 8): at 640x192 the median object is about 18 px
    # high, below RetinaNet's smallest COCO anchor (32 px).
    bbox_head=dict(
        num_classes=3,
        in_channels=channels,
        feat_channels=channels,
        anchor_generator=dict(octave_base_scale=2)))

max_epochs = 2
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min_ratio=0.01, begin=0, end=max_epochs,
         by_epoch=True, convert_to_iter_based=True)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
