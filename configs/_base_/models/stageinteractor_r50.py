# StageInteractor R50: mmdet's ResNet, ChannelMapper, Hungarian assigner and losses; perception's decoder.
num_stages = 6
num_queries = 100
model = dict(
    type='mmdet.SingleStageDetector',
    data_preprocessor=dict(
        type='mmdet.DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/resnet50_imagenet.pth')),
    neck=dict(
        type='mmdet.ChannelMapper',
        in_channels=[256, 512, 1024, 2048],
        kernel_size=1,
        out_channels=256,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=4),
    bbox_head=dict(
        type='StageInteractorHead',
        num_classes=80,
        num_queries=num_queries,
        num_stages=num_stages,
        dim=256,
        num_groups=4,
        in_points=[64 // 8] + [32 // 8] * (num_stages - 1),
        subbox_points=8,
        out_points=128,
        ffn_channels=2048,
        num_heads=8,
        featmap_strides=(4, 8, 16, 32),
        reuse_start=2,
        iou_thr=0.5,
        loss_cls=dict(type='mmdet.QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=2.0),
        loss_bbox=dict(type='mmdet.L1Loss', loss_weight=5.0),
        loss_iou=dict(type='mmdet.GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        assigner=dict(
            type='mmdet.HungarianAssigner',
            match_costs=[
                dict(type='mmdet.FocalLossCost', weight=2.0),
                dict(type='mmdet.BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='mmdet.IoUCost', iou_mode='giou', weight=2.0)
            ])),
    test_cfg=dict(max_per_img=num_queries))
