# The monocular stage of TiO-Depth alone on the synthetic KITTI raw drives (the model and data of
# tiodepth_swin-w32_10e_synthkittiraw-depth.py), the plain baseline of the AugUndo and depth-ranking
# comparisons (tiodepth-mono_swin-w32_{augundo,ranking}_12e_synthkittiraw-depth.py): 12 epochs of the 258
# training views, one Adam (the mono stage's), halved at epochs 8 and 10, evaluated on the mono output with
# the stereo scale (no median scaling).
#   python tools/create_data.py synthetic-kitti-raw --out data/synthkitti_raw
#   OMP_NUM_THREADS=1 python tools/train.py configs/tiodepth/tiodepth-mono_swin-w32_12e_synthkittiraw-depth.py
_base_ = ['./tiodepth_swin-w32_10e_synthkittiraw-depth.py']

max_epochs = 12
model = dict(stage_start_epochs=(0, 1000, 1000), test_out_modes=('mono', ))
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.999)))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[8, 10], gamma=0.5)
]
val_evaluator = [dict(_base_.depth_metric, pred_key='pred_depth_mono', prefix='mono')]
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
