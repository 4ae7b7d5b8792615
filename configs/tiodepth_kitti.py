# TiO-Depth (ICCV 2023) on KITTI raw, Eigen split, with the official defaults
# (ZM-Zhou/TiO-Depth_pytorch: options/TiO-Depth/train/tio_depth-swint-m_384crop256_kitti_stereo.yaml and
# options/_base/networks/tio_depth.yaml): Swin-T with a stride-2 patch embedding, decoder channels
# 64-128-256-256, 49 exponential disparity bins over 2-300 px at 1280 px width, images resized to 1280x384
# with a random scale of 0.75-1.5, cropped to 832x256 and flipped; batch 8, 50 epochs; three cumulative
# loss stages (mono from epoch 1, stereo from 21, refine from 31, counted from 1) with one Adam each
# (lr 1e-4, betas 0.5/0.999, the decoder at 0.1x in stereo and refine), halved at the official milestones.
#
# Pretrained weights are read from local files only (None: random initialisation / switched off):
#   model.backbone_checkpoint: the ImageNet Swin-T of the Swin repository (swin_tiny_patch4_window7_224.pth;
#       its 4x4 patch embedding fits the official overlapping stride-2 embedding, patch_embed_kernel=4);
#   model.vgg_checkpoint: torchvision's vgg19 state dict (vgg19-dcbb9e9d.pth) for the perceptual loss.
# Here the perceptual loss is OFF (vgg_checkpoint=None); the paper's setting turns it on:
#   python tools/train.py configs/tiodepth_kitti.py --cfg-options \
#       model.backbone_checkpoint=checkpoints/swin_tiny_patch4_window7_224.pth \
#       model.vgg_checkpoint=checkpoints/vgg19-dcbb9e9d.pth
#
# Left out of the official recipe: the colour augmentation of the network input (the official code feeds
# jittered images to the network and computes the losses on the clean ones); the stereo pair is flipped
# together (the model negates the stereo direction) instead of flipped and swapped.
_base_ = ['./_base_/default_runtime.py']

data_root = 'data/kitti_raw/'
full_size = (1280, 384)  # (W, H)
crop_size = (832, 256)  # (W, H)
backend_args = None
max_epochs = 50
stage_start_epochs = (0, 20, 30)

model = dict(
    type='TiODepth',
    data_preprocessor=dict(
        type='mmdet3d.Det3DDataPreprocessor',
        # the model takes images in [0, 1] and normalises them itself
        mean=[0., 0., 0.],
        std=[255., 255., 255.],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='mmdet.SwinTransformer',
        embed_dims=96,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        patch_size=2,
        strides=(2, 2, 2, 2),
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3,
        patch_norm=True,
        convert_weights=True),
    patch_embed_kernel=4,
    decoder_channels=(64, 128, 256, 256),
    num_bins=49,
    min_disp=2.,
    max_disp=300.,
    mfm_levels=(3, 2, 1),
    distill_levels=(3, 2, 1),
    focal_baseline=400.9,
    stage_start_epochs=stage_start_epochs,
    backbone_checkpoint=None,
    vgg_checkpoint=None,
    # 'refine' is the paper's monocular result, 'stereo' its binocular one
    test_out_modes=('refine', 'stereo', 'mono'))

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

# Stereo-trained: depth is metric through fx * baseline, no median scaling.
depth_metric = dict(type='DepthMetric', crop='garg', scaling='none', min_depth=1e-3, max_depth=80.)
val_evaluator = [
    dict(depth_metric, pred_key='pred_depth_refine', prefix='refine'),
    dict(depth_metric, pred_key='pred_depth_stereo', prefix='stereo'),
]
test_evaluator = val_evaluator

adam = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.999)))
optim_wrapper = dict(
    constructor='TiODepthOptimWrapperConstructor',
    mono=adam,
    stereo=adam,
    refine=adam,
    paramwise_cfg=dict(stereo=dict(decoder=0.1), refine=dict(decoder=0.1)))

param_scheduler = dict(
    mono=[dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[20, 30, 40, 45], gamma=0.5)],
    stereo=[dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[30, 40, 45], gamma=0.5)],
    refine=[dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[40, 45], gamma=0.5)])

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2))
