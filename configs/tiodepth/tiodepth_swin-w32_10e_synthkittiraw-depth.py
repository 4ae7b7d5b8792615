# TiO-Depth sized for 2 CPU cores, on the synthetic KITTI raw drives: a small Swin from scratch (embed 32,
# depths 2-2-2-2, still stride 2), decoder 16-32-64-64, 320x96 input. The disparity bins are the official
# 2-300 px at 1280 px width scaled to 320 px (0.5-75 px), so they cover the same depths. Stages and
# milestones keep the official proportions (mono 8 : stereo 4 : refine 8 epochs of 20) on 10 epochs, sized
# to one hour on one CPU thread: stereo from epoch 5, refine from 7 (counted from 1). On that budget the
# binocular output does not leave its constant-disparity start (configs/tiodepth/README.md);
# tiodepth_swin-w32_from-mono_4e_synthkittiraw-depth.py starts the stereo stage from the 12-epoch mono run.
#   python tools/create_data.py synthetic-kitti-raw --out data/synthkitti_raw
#   OMP_NUM_THREADS=1 python tools/train.py configs/tiodepth/tiodepth_swin-w32_10e_synthkittiraw-depth.py
_base_ = [
    '../_base_/models/tiodepth_swin-t.py', '../_base_/datasets/synthkittiraw-depth.py',
    '../_base_/schedules/tiodepth-50e.py', '../_base_/default_runtime.py'
]

max_epochs = 10

model = dict(
    backbone=dict(
        embed_dims=32,
        depths=(2, 2, 2, 2),
        num_heads=(1, 2, 4, 8),
        drop_path_rate=0.1,
        convert_weights=False,
        init_cfg=None),
    decoder_channels=(16, 32, 64, 64),
    min_disp=0.5,
    max_disp=75.,
    stage_start_epochs=(0, 4, 6))

param_scheduler = dict(
    mono=[dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[4, 6, 8, 9], gamma=0.5)],
    stereo=[dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[6, 8, 9], gamma=0.5)],
    refine=[dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[8, 9], gamma=0.5)])
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)

val_evaluator = [
    dict(_base_.depth_metric, pred_key='pred_depth_refine', prefix='refine'),
    dict(_base_.depth_metric, pred_key='pred_depth_stereo', prefix='stereo'),
    dict(_base_.depth_metric, pred_key='pred_depth_mono', prefix='mono'),
]
test_evaluator = val_evaluator

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
