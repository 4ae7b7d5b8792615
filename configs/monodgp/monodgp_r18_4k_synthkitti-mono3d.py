# The learning run of MonoDGP on the synthetic KITTI world, beside monodetr_r18_4k_synthkitti-mono3d.py (the same
# schedule: 4000 iterations of batch 4, x0.1 for the last 15 %, validated every 500 iterations):
#   OMP_NUM_THREADS=2 python tools/train.py configs/monodgp/monodgp_r18_4k_synthkitti-mono3d.py
_base_ = ['./monodgp_r18_demo_synthkitti-mono3d.py']

max_iters = 4000
train_cfg = dict(max_iters=max_iters, val_interval=500)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end={{_base_.warmup_iters}}, by_epoch=False),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[round(max_iters * 0.85)],
         gamma=0.1)
]
train_dataloader = dict(persistent_workers=True)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=500, max_keep_ckpts=1))
