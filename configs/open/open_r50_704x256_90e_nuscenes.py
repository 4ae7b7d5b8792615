# OPEN (ECCV 2024) with the official defaults of AlmoonYsl/OPEN projects/configs/open_r50_704_90e.py: ResNet-50
# (frozen BN, initialised from the nuImages Cascade Mask R-CNN backbone), 2-level FPN (stride 16 used), 6 cameras at
# 704x256, 644 queries + 256 propagated, memory 1024, 10 denoising groups, 90 epochs of streaming training
# (seq_split_num 2), AdamW 4e-4 for a total batch of 16 (8 x 2), backbone lr x 0.1, cosine, 500 warm-up
# iterations, gradient clipping 35, fp16 with --amp. The backbone weights load from a local file:
#   checkpoints/cascade_mask_rcnn_r50_fpn_coco-20e_20e_nuim_20201009_124951-40963960.pth
_base_ = ['../_base_/default_runtime.py']

point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
position_range = [-61.2, -61.2, -10.0, 61.2, 61.2, 10.0]
class_names = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier', 'motorcycle', 'bicycle', 'pedestrian',
    'traffic_cone'
]
metainfo = dict(classes=class_names)
embed_dims = 256
num_gpus, batch_size = 8, 2
num_epochs = 90
num_iters_per_epoch = 28130 // (num_gpus * batch_size)

model = dict(
    type='OPEN',
    data_preprocessor=dict(
        type='mmdet3d.Det3DDataPreprocessor',
        mean=[103.530, 116.280, 123.675],
        std=[57.375, 57.120, 58.395],
        bgr_to_rgb=False,
        pad_size_divisor=32),
    backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        with_cp=True,
        style='pytorch',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/cascade_mask_rcnn_r50_fpn_coco-20e_20e_nuim_20201009_124951-40963960.pth',
            prefix='backbone.')),
    neck=dict(type='mmdet.FPN', in_channels=[1024, 2048], out_channels=embed_dims, num_outs=2),
    feat_level=0,
    img_roi_head=dict(
        type='OPENObjectHead',
        num_classes=len(class_names),
        embed_dims=embed_dims,
        depth_range=(1.0, position_range[3]),
        num_depth_bins=16,
        position_range=position_range,
        encoder=dict(feedforward_channels=2048, dropout=0.1, num_heads=8, num_levels=2, num_points=7)),
    pts_bbox_head=dict(
        type='StreamPETRHead',
        num_classes=len(class_names),
        in_channels=embed_dims,
        embed_dims=embed_dims,
        num_query=644,
        memory_len=1024,
        topk_proposals=256,
        num_propagated=256,
        with_ego_pos=True,
        scalar=10,
        noise_scale=1.0,
        dn_weight=1.0,
        split=0.75,
        pc_range=point_cloud_range,
        position_embedding=dict(type='ObjectWisePositionEmbedding', position_range=position_range),
        decoder=dict(num_layers=6, num_heads=8, feedforward_channels=2048, dropout=0.1, with_cp=True),
        code_weights=[2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        bbox_coder=dict(type='NMSFreeBBoxCoder', post_center_range=position_range, max_num=300),
        assigner=dict(
            type='GroupHungarianAssigner',
            match_costs=[
                dict(type='mmdet.FocalLossCost', weight=2.0),
                # match_with_velo=True: the L1 cost covers all 10 codes
                dict(type='InstanceL1Cost', key='codes', weight=0.25)
            ]),
        loss_cls=dict(type='DepthFocalLoss', gamma=2.0, alpha=0.25, loss_weight=2.0),
        soft_targets=True,
        query_inverse_sigmoid=True,
        loss_bbox=dict(type='mmdet.L1Loss', loss_weight=0.25)))

dataset_type = 'NuScenesMultiViewDataset'
data_root = 'data/nuscenes/'
backend_args = None
train_pipeline = [
    dict(type='LoadMultiViewImages', to_float32=True),
    dict(type='mmdet3d.LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5, backend_args=backend_args),
    dict(type='mmdet3d.LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(type='mmdet3d.ObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='mmdet3d.ObjectNameFilter', classes=class_names),
    dict(type='MultiViewResizeCropFlip', final_size=(704, 256), resize_lim=(0.38, 0.55), rand_flip=True),
    dict(type='MultiViewBEVAug', rot_range=(-0.3925, 0.3925), scale_ratio_range=(0.95, 1.05)),
    dict(type='PackMultiViewInputs', keys=('img', 'points', 'gt_bboxes_3d', 'gt_labels_3d'))
]
test_pipeline = [
    dict(type='LoadMultiViewImages', to_float32=True),
    dict(type='MultiViewResizeCropFlip', final_size=(704, 256), resize_lim=(0.38, 0.55), training=False),
    dict(type='PackMultiViewInputs', keys=('img', ))
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    batch_sampler=dict(type='StreamBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='nuscenes_infos_train.pkl',
        metainfo=metainfo,
        pipeline=train_pipeline,
        # use_lidar: the LiDAR paths are resolved for the depth supervision
        modality=dict(use_camera=True, use_lidar=True),
        seq_split_num=2,
        queue_length=1,
        test_mode=False))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='nuscenes_infos_val.pkl',
        metainfo=metainfo,
        pipeline=test_pipeline,
        test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='NuScenesMetric', data_root=data_root, ann_file=data_root + 'nuscenes_infos_val.pkl')
test_evaluator = val_evaluator

# The official fp16 training (dynamic loss scale): tools/train.py --amp (AmpOptimWrapper on a GPU).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}),
    clip_grad=dict(max_norm=35, norm_type=2))
max_iters = num_epochs * num_iters_per_epoch
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min_ratio=1e-3, by_epoch=False, begin=0, end=max_iters)
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=num_iters_per_epoch, max_keep_ckpts=3),
    # tools/test.py --show-dir: the 6 original camera images with the boxes, and the bird's-eye view
    visualization=dict(type='MultiViewVisualizationHook'))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=16)
