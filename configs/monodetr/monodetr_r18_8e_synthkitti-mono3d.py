# The learning proof of MonoDETR on the synthetic KITTI world: monodetr_r18_1e_synthkitti-mono3d.py for
# 8 epochs of the 800 training frames (about 2 hours on 2 CPU cores), x0.1 at epoch 6, validated every
# 2 epochs on the 200 val frames:
#   python tools/create_data.py synthetic-kitti --out data/synthkitti --num-train 800 --num-val 200
#   python tools/create_data.py kitti --root data/synthkitti
#   OMP_NUM_THREADS=2 python tools/train.py configs/monodetr/monodetr_r18_8e_synthkitti-mono3d.py
_base_ = ['./monodetr_r18_1e_synthkitti-mono3d.py']

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=2, val_begin=1)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[6], gamma=0.1)
]
train_dataloader = dict(num_workers=1, persistent_workers=True)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=2, max_keep_ckpts=1))
