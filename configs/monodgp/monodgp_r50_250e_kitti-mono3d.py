# MonoDGP on KITTI with the official defaults (PuFanqi23/MonoDGP configs/monodgp.yaml): MonoDETR's ResNet-50
# from ImageNet and 1280x384 input, plus MixUp3D (p 0.5); batch 8, AdamW 2e-4, 250 epochs with x0.5 decays
# at 85, 125, 165 and 205.
#   python tools/train.py configs/monodgp/monodgp_r50_250e_kitti-mono3d.py
_base_ = [
    '../_base_/models/monodgp_r50.py', '../_base_/datasets/kitti-mono3d.py', '../_base_/schedules/monodgp-250e.py',
    '../_base_/default_runtime.py'
]

# the official order: photometric distortion and flip, MixUp3D, then the shared crop-and-scale
train_pipeline = [
    *_base_.train_pipeline[:4],
    dict(
        type='MixUp3D',
        prob=0.5,
        alpha=0.5,
        max_objects=50,
        max_tries=50,
        dataset=dict(
            type=_base_.dataset_type,
            data_root=_base_.data_root,
            ann_file='kitti_infos_train.pkl',
            data_prefix=dict(img='training/image_2'),
            metainfo=_base_.metainfo,
            backend_args=_base_.backend_args),
        load_pipeline=_base_.train_pipeline[:2]),
    *_base_.train_pipeline[4:],
]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=train_pipeline))

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3))
randomness = dict(seed=444)
