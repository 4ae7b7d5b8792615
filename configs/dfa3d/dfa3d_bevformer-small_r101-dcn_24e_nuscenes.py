# BEVFormer-small with DFA3D (ICCV 2023) with the defaults of IDEA-Research/3D-deformable-attention
# (BEVFormer_DFA3D/projects/configs/bevformer/bevformer_small_DFA3D.py), without the temporal self-attention, CAN
# bus, grid mask and photometric distortion (not implemented here: one frame, no queue): ResNet-101-DCN (caffe
# style, frozen stage 1 and BN) initialised from the FCOS3D checkpoint, one FPN level (stride 32), 6 cameras at
# 0.8 x 1600x900, BEV 150x150 from 3 encoder layers (4 pillar points, 8 sampling points, use_empty=False), 6 decoder
# layers of 900 queries, the grouped depth head (d_bound [2, 58, 0.5]: 112 bins, levels [2, 4, 8]: 24 codes, loss
# weight 0.5) on that level (indice_layer_depthnet=0), AdamW 2e-4 (backbone x 0.1), weight decay 0.01, 500 linear
# warm-up iterations (1/3), cosine (min ratio 1e-3), gradient clipping 35, 24 epochs of 1 sample on each of 8 GPUs.
# The backbone weights load from a local file: ckpts/r101_dcn_fcos3d_pretrain.pth, the official load_from (or
# --cfg-options model.backbone.init_cfg=None).
_base_ = ['../_base_/default_runtime.py']

point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
post_center_range = [-61.2, -61.2, -10.0, 61.2, 61.2, 10.0]
class_names = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier', 'motorcycle', 'bicycle', 'pedestrian',
    'traffic_cone'
]
metainfo = dict(classes=class_names)
embed_dims = 256
bev_h = bev_w = 150
num_gpus, batch_size = 8, 1
num_epochs = 24
num_iters_per_epoch = 28130 // (num_gpus * batch_size)
image_size = (1280, 720)  # (W, H)

model = dict(
    type='DFA3DBEVFormer',
    use_dfa3d=True,
    depth_source='predicted',
    depth_level=0,
    depth_range=(2.0, 58.0),
    depth_bin_size=0.5,
    data_preprocessor=dict(
        type='mmdet3d.Det3DDataPreprocessor',
        mean=[103.530, 116.280, 123.675],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_size_divisor=32),
    backbone=dict(
        type='mmdet.ResNet',
        depth=101,
        num_stages=4,
        out_indices=(3, ),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='caffe',
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, False, True, True),
        init_cfg=dict(type='Pretrained', checkpoint='ckpts/r101_dcn_fcos3d_pretrain.pth', prefix='img_backbone.')),
    neck=dict(
        type='mmdet.FPN',
        in_channels=[2048],
        out_channels=embed_dims,
        start_level=0,
        add_extra_convs='on_output',
        num_outs=1,
        relu_before_extra_convs=True),
    depth_head=dict(type='DFA3DDepthHead', in_channels=embed_dims, mid_channels=embed_dims, group_sizes=(2, 4, 8),
                    loss_weight=0.5),
    encoder=dict(
        type='BEVFormerEncoder',
        bev_h=bev_h,
        bev_w=bev_w,
        pc_range=point_cloud_range,
        embed_dims=embed_dims,
        num_layers=3,
        num_heads=8,
        feedforward_channels=512,
        dropout=0.1,
        num_levels=1,
        num_cams=6,
        num_points_in_pillar=4,
        self_attn_points=4,
        cross_attn_points=8),
    pts_bbox_head=dict(
        type='BEVFormerHead',
        num_classes=len(class_names),
        embed_dims=embed_dims,
        num_query=900,
        num_layers=6,
        num_heads=8,
        num_points=4,
        feedforward_channels=512,
        dropout=0.1,
        pc_range=point_cloud_range,
        code_weights=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2],
        bbox_coder=dict(type='NMSFreeBBoxCoder', post_center_range=post_center_range, max_num=300),
        assigner=dict(
            type='GroupHungarianAssigner',
            match_costs=[
                dict(type='mmdet.FocalLossCost', weight=2.0),
                dict(type='InstanceL1Cost', key='codes', weight=0.25)
            ]),
        loss_cls=dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0),
        loss_bbox=dict(type='mmdet.L1Loss', loss_weight=0.25)))

dataset_type = 'NuScenesMultiViewDataset'
data_root = 'data/nuscenes/'
backend_args = None
train_pipeline = [
    dict(type='LoadMultiViewImages', to_float32=True),
    # the points give the depth head its supervision (nearest LiDAR depth per 32x32 patch)
    dict(type='mmdet3d.LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5, backend_args=backend_args),
    dict(type='mmdet3d.LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(type='mmdet3d.ObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='mmdet3d.ObjectNameFilter', classes=class_names),
    dict(type='MultiViewResizeCropFlip', final_size=image_size, resize_lim=(0.8, 0.8)),
    dict(type='PackMultiViewInputs', keys=('img', 'points', 'gt_bboxes_3d', 'gt_labels_3d'))
]
test_pipeline = [
    dict(type='LoadMultiViewImages', to_float32=True),
    dict(type='MultiViewResizeCropFlip', final_size=image_size, resize_lim=(0.8, 0.8), training=False),
    dict(type='PackMultiViewInputs', keys=('img', ))
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='nuscenes_infos_train.pkl',
        metainfo=metainfo,
        pipeline=train_pipeline,
        modality=dict(use_camera=True, use_lidar=True),
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

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.01),
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
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=num_iters_per_epoch, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=8)
