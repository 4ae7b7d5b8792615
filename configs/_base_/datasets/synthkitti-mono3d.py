# The synthetic KITTI world in KITTI's layout (`python tools/create_data.py synthetic-kitti --out
# data/synthkitti`, then `python tools/create_data.py kitti --root data/synthkitti`), at 640x192 for the CPU.
_base_ = ['./kitti-mono3d.py']

data_root = 'data/synthkitti/'
input_size = (640, 192)  # (W, H)

train_pipeline = [
    dict(type='LoadImageMono3D', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotationsMono3D'),
    dict(type='mmdet.PhotoMetricDistortion'),
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
    batch_size=8,
    num_workers=2,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(ann_dir=data_root + 'training/label_2')
test_evaluator = val_evaluator
