# KITTI raw, Eigen split, as stereo pairs for self-supervised depth (TiO-Depth's official data:
# options/TiO-Depth/train/tio_depth-swint-m_384crop256_kitti_stereo.yaml): images resized to 1280x384 with a
# random scale of 0.75-1.5, cropped to 832x256 and flipped, the pair moved together; tested at 1280x384
# against the velodyne depth of the Eigen test frames. Left out of the official recipe: the colour
# augmentation of the network input (the official code feeds jittered images to the network and computes the
# losses on the clean ones); the pair is flipped together (the model negates the stereo direction) instead
# of flipped and swapped.
data_root = 'data/kitti_raw/'
full_size = (1280, 384)  # (W, H)
crop_size = (832, 256)  # (W, H)
backend_args = None

views = ['img', 'stereo_img']
# The TransformBroadcaster hands back these keys of the first view only (shared random parameters).
view_meta = dict(img=views, img_shape=['img_shape', ...], scale_factor=['scale_factor', ...])
meta_keys = ('img_path', 'stereo_img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip', 'flip_direction',
             'side', 'cam2img', 'baseline', 'folder', 'frame')
load_pair = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(
        type='KeyMapper',
        mapping=dict(img_path='stereo_img_path', img='stereo_img'),
        auto_remap=True,
        transforms=[dict(type='LoadImageFromFile', backend_args=backend_args)]),
]
# The pair as one (2, H, W, 3) list under 'img', packed to (2, 3, H, W): target view, then its partner.
stack_pair = dict(type='KeyMapper', mapping=dict(img=views), remapping=dict(img='img'), auto_remap=False,
                  transforms=[])
train_pipeline = [
    *load_pair,
    dict(
        type='TransformBroadcaster',
        mapping=dict(img=views),
        remapping=dict(view_meta, flip=['flip', ...], flip_direction=['flip_direction', ...]),
        auto_remap=False,
        share_random_params=True,
        transforms=[
            dict(type='RandomResize', scale=full_size, ratio_range=(0.75, 1.5), keep_ratio=False),
            dict(type='mmdet.RandomCrop', crop_size=crop_size),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        ]),
    stack_pair,
    dict(type='mmdet3d.Pack3DDetInputs', keys=['img'], meta_keys=meta_keys),
]
test_pipeline = [
    *load_pair,
    dict(
        type='TransformBroadcaster',
        mapping=dict(img=views),
        remapping=view_meta,
        auto_remap=False,
        transforms=[dict(type='Resize', scale=full_size, keep_ratio=False)]),
    stack_pair,
    dict(type='mmdet3d.Pack3DDetInputs', keys=['img'], meta_keys=meta_keys + ('gt_depth', )),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='KittiRawDepthDataset',
        data_root=data_root,
        # the official train_list.txt: the 22,600 frames of monodepth2's eigen_full split
        ann_file='splits/eigen_full/train_files.txt',
        with_stereo=True,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='KittiRawDepthDataset',
        data_root=data_root,
        ann_file='splits/eigen/test_files.txt',
        with_stereo=True,
        depth_source='velodyne',
        pipeline=test_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

# Stereo-trained models: depth is metric through fx * baseline, no median scaling. A model with several
# outputs evaluates each with its own pred_key and prefix.
depth_metric = dict(type='DepthMetric', crop='garg', scaling='none', min_depth=1e-3, max_depth=80.)
val_evaluator = depth_metric
test_evaluator = val_evaluator
