# The learning run of MonoDETR on the synthetic KITTI world: the CPU model and its recipe
# (monodetr_r18_demo_synthkitti-mono3d.py) for 4000 iterations of batch 4 (20 epochs of the 800 training
# frames, about 2 hours on 2 CPU cores), x0.1 for the last 15 %, validated every 500 iterations on the 200 val
# frames (the learning curve: tools/analysis/plot_learning_curve.py):
#   python tools/create_data.py synthetic-kitti --out data/synthkitti --num-train 800 --num-val 200
#   python tools/create_data.py kitti --root data/synthkitti
#   OMP_NUM_THREADS=2 python tools/train.py configs/monodetr/monodetr_r18_4k_synthkitti-mono3d.py
_base_ = ['./monodetr_r18_demo_synthkitti-mono3d.py']

max_iters = 4000
train_cfg = dict(max_iters=max_iters, val_interval=500)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end={{_base_.warmup_iters}}, by_epoch=False),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[round(max_iters * 0.85)],
         gamma=0.1)
]
train_dataloader = dict(persistent_workers=True)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=500, max_keep_ckpts=1))
