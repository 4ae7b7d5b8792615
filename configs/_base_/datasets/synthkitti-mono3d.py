# The synthetic KITTI world in KITTI's layout (`python tools/create_data.py synthetic-kitti --out
# data/synthkitti`, then `python tools/create_data.py kitti --root data/synthkitti`), sized for 2 CPU cores:
# 480x144 input (the synthetic frames are 1242x375; the median val car is 40 px tall there, 15 px here);
# flip and crop-scale as MonoDETR, without the photometric distortion (the world's colours do not vary between
# train and val, and distorting the full-size frame took about 8 % of a training step's time).
# Iteration-based (`_base_/schedules/synthkitti-cpu.py`); evaluated at KITTI's overlaps (`kitti/...`) and at
# IoU 0.5 for cars (`kitti_loose/...`, the loose set of tools/analysis/kitti_eval.py).
_base_ = ['./kitti-mono3d.py']

data_root = 'data/synthkitti/'
input_size = (480, 144)  # (W, H)

train_pipeline = [
    dict(type='LoadImageMono3D', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotationsMono3D'),
    dict(type='RandomFlipMono3D', prob=0.5),
    dict(type='RandomCropScaleMono3D', out_size=input_size, prob=0.5, scale=0.05, shift=0.05),
    dict(type='FilterMono3DInstances', min_depth=2.0, max_depth=65.0),
    dict(type='PackMono3DInputs'),
]
test_pipeline = [
    dict(type='LoadImageMono3D', backend_args={{_base_.backend_args}}),
    dict(type='RandomCropScaleMono3D', out_size=input_size, prob=0.0),
    dict(type='PackMono3DInputs', keys=['img']),
]

train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = [
    dict(type='KittiMetric', ann_dir=data_root + 'training/label_2', prefix='kitti'),
    dict(type='KittiMetric', ann_dir=data_root + 'training/label_2', iou_set='loose', prefix='kitti_loose'),
]
test_evaluator = val_evaluator
