# KITTI monocular 3D detection at MonoDETR's 1280x384 input: camera 2, 3 classes, camera-frame boxes.
# Info files: `python tools/create_data.py kitti --root data/kitti`.
dataset_type = 'KittiMono3DDataset'
data_root = 'data/kitti/'
class_names = ['Pedestrian', 'Cyclist', 'Car']
metainfo = dict(classes=class_names)
input_size = (1280, 384)  # (W, H)
backend_args = None

train_pipeline = [
    dict(type='LoadImageMono3D', backend_args=backend_args),
    dict(type='LoadAnnotationsMono3D'),
    # MonoDETR's order: photometric distortion, flip, then crop-and-scale into the input size.
    dict(type='mmdet.PhotoMetricDistortion'),
    dict(type='RandomFlipMono3D', prob=0.5),
    dict(type='RandomCropScaleMono3D', out_size=input_size, prob=0.5, scale=0.05, shift=0.05),
    dict(type='FilterMono3DInstances', min_depth=2.0, max_depth=65.0),
    dict(type='PackMono3DInputs'),
]
test_pipeline = [
    dict(type='LoadImageMono3D', backend_args=backend_args),
    dict(type='RandomCropScaleMono3D', out_size=input_size, prob=0.0),
    dict(type='PackMono3DInputs', keys=['img']),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='kitti_infos_train.pkl',
        data_prefix=dict(img='training/image_2'),
        pipeline=train_pipeline,
        metainfo=metainfo,
        test_mode=False,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='kitti_infos_val.pkl',
        data_prefix=dict(img='training/image_2'),
        pipeline=test_pipeline,
        metainfo=metainfo,
        test_mode=True,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(type='KittiMetric', ann_dir=data_root + 'training/label_2')
test_evaluator = val_evaluator
