# MonoDETR on KITTI with the official defaults (ZrrSkywalker/MonoDETR configs/monodetr.yaml): ResNet-50 from
# ImageNet, 1280x384 input, batch 16, AdamW 2e-4, 195 epochs with x0.1 decays at 125 and 165.
#   python tools/train.py configs/monodetr/monodetr_r50_195e_kitti-mono3d.py
_base_ = [
    '../_base_/models/monodetr_r50.py', '../_base_/datasets/kitti-mono3d.py', '../_base_/schedules/monodetr-195e.py',
    '../_base_/default_runtime.py'
]

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3))
randomness = dict(seed=444)
