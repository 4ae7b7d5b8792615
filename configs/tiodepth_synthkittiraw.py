# TiO-Depth sized for 2 CPU cores, on the synthetic KITTI raw drives
# (`python tools/create_data.py synthetic-kitti-raw --out data/synthkitti_raw`): a small Swin from scratch
# (embed 32, depths 2-2-2-2, still stride 2), decoder 16-32-64-64, 320x96 input. The disparity bins are
# the official 2-300 px at 1280 px width scaled to 320 px (0.5-75 px), so they cover the same depths.
# Stages and milestones keep the official proportions (mono 8 : stereo 4 : refine 8 epochs of 20) on 10
# epochs, sized to one hour on one CPU thread: stereo from epoch 5, refine from 7 (counted from 1).
# On that budget the binocular output does not leave its constant-disparity start (README: learning runs);
# tiodepth_synthkittiraw_stereo.py starts the stereo stage from the 12-epoch mono run instead.
# The perceptual loss is off (vgg_checkpoint=None, no VGG weights on this machine).
#   python tools/create_data.py synthetic-kitti-raw --out data/synthkitti_raw
#   OMP_NUM_THREADS=1 python tools/train.py configs/tiodepth_synthkittiraw.py
_base_ = ['./tiodepth_kitti.py']

data_root = 'data/synthkitti_raw/raw/'
input_size = (320, 96)  # (W, H)
max_epochs = 10

model = dict(
    backbone=dict(
        embed_dims=32,
        depths=(2, 2, 2, 2),
        num_heads=(1, 2, 4, 8),
        drop_path_rate=0.1,
        convert_weights=False),
    decoder_channels=(16, 32, 64, 64),
    min_disp=0.5,
    max_disp=75.,
    stage_start_epochs=(0, 4, 6),
    backbone_checkpoint=None,
    vgg_checkpoint=None)

train_pipeline = [
    *_base_.train_pipeline[:2],
    dict(
        _base_.train_pipeline[2],
        transforms=[
            # scales of 1-1.5 so that the crop always fits (official: 0.75-1.5 of 1280x384, crop 832x256)
            dict(type='RandomResize', scale=input_size, ratio_range=(1.0, 1.5), keep_ratio=False),
            dict(type='mmdet.RandomCrop', crop_size=input_size),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        ]),
    *_base_.train_pipeline[3:],
]
test_pipeline = [
    *_base_.test_pipeline[:2],
    dict(_base_.test_pipeline[2], transforms=[dict(type='Resize', scale=input_size, keep_ratio=False)]),
    *_base_.test_pipeline[3:],
]

train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(data_root=data_root, ann_file='../splits/eigen_zhou/train_files.txt', pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, ann_file='../splits/eigen/test_files.txt', pipeline=test_pipeline))
test_dataloader = val_dataloader

param_scheduler = dict(
    mono=[dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[4, 6, 8, 9], gamma=0.5)],
    stereo=[dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[6, 8, 9], gamma=0.5)],
    refine=[dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[8, 9], gamma=0.5)])
# tiodepth_kitti.py's refine and stereo metrics, and the mono output's
val_evaluator = [*_base_.val_evaluator, dict(_base_.depth_metric, pred_key='pred_depth_mono', prefix='mono')]
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
