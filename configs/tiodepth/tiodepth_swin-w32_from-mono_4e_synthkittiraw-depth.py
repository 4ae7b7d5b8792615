# The binocular and refined-mono stages of TiO-Depth on the synthetic KITTI raw drives, started from the
# trained monocular stage (tiodepth-mono_swin-w32_12e_synthkittiraw-depth.py, 12 epochs) as the official
# schedule starts them from 20 epochs of mono training: 4 epochs, stereo from the first, refine from the
# third (counted from 1), the mono stage going on at its last learning rate.
#   OMP_NUM_THREADS=1 python tools/train.py configs/tiodepth/tiodepth-mono_swin-w32_12e_synthkittiraw-depth.py
#   OMP_NUM_THREADS=1 python tools/train.py configs/tiodepth/tiodepth_swin-w32_from-mono_4e_synthkittiraw-depth.py
_base_ = ['./tiodepth_swin-w32_10e_synthkittiraw-depth.py']

load_from = 'work_dirs/tiodepth-mono_swin-w32_12e_synthkittiraw-depth/epoch_12.pth'
max_epochs = 4
model = dict(stage_start_epochs=(0, 0, 2))
optim_wrapper = dict(mono=dict(optimizer=dict(lr=2.5e-5)))
param_scheduler = dict(
    mono=[dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=max_epochs)],
    stereo=[dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[3], gamma=0.5)],
    refine=[dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[3], gamma=0.5)])
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
