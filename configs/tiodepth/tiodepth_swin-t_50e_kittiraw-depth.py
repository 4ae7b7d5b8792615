# TiO-Depth on KITTI raw, Eigen split, with the official defaults (ZM-Zhou/TiO-Depth_pytorch:
# options/TiO-Depth/train/tio_depth-swint-m_384crop256_kitti_stereo.yaml): Swin-T from ImageNet, 832x256
# crops, batch 8, 50 epochs. The perceptual loss is off (model.vgg_checkpoint=None); the paper's setting
# turns it on with a local torchvision vgg19 (configs/tiodepth/README.md).
#   python tools/train.py configs/tiodepth/tiodepth_swin-t_50e_kittiraw-depth.py
_base_ = [
    '../_base_/models/tiodepth_swin-t.py', '../_base_/datasets/kittiraw-depth.py',
    '../_base_/schedules/tiodepth-50e.py', '../_base_/default_runtime.py'
]

val_evaluator = [
    dict(_base_.depth_metric, pred_key='pred_depth_refine', prefix='refine'),
    dict(_base_.depth_metric, pred_key='pred_depth_stereo', prefix='stereo'),
]
test_evaluator = val_evaluator

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2))
