# MonoDETR (ICCV 2023) as the official code builds it (ZrrSkywalker/MonoDETR configs/monodetr.yaml): ResNet-50
# with frozen BatchNorm, 4 levels of 256 channels, 80 depth bins, 50 queries x 11 groups, 3 + 3 transformer
# layers, the official losses and matching costs.
embed_dims = 256
num_levels = 4
num_depth_bins = 80
depth_min = 1e-3
depth_max = 60.

model = dict(
    type='MonoDETR',
    data_preprocessor=dict(
        type='Det3DDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(1, 2, 3),
        # the official backbone: frozen BatchNorm everywhere, stem and layer1 frozen
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        # torchvision's ImageNet ResNet-50, read from a local file only (configs/monodetr/README.md)
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/resnet50_imagenet.pth')),
    neck=dict(
        type='mmdet.ChannelMapper',
        in_channels=[512, 1024, 2048],
        kernel_size=1,
        out_channels=embed_dims,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=num_levels),
    positional_encoding=dict(num_feats=embed_dims // 2, normalize=True),
    depth_predictor=dict(
        type='DepthPredictor',
        embed_dims=embed_dims,
        num_depth_bins=num_depth_bins,
        depth_min=depth_min,
        depth_max=depth_max,
        num_heads=8,
        feedforward_channels=256,
        dropout=0.1),
    transformer=dict(
        type='DepthAwareTransformer',
        num_feature_levels=num_levels,
        num_queries=50,
        num_groups=11,
        encoder=dict(
            type='VisualEncoder',
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, num_levels=num_levels, num_points=4,
                                   dropout=0.1),
                ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=256, num_fcs=2, ffn_drop=0.1,
                             act_cfg=dict(type='ReLU', inplace=True)))),
        decoder=dict(
            type='DepthAwareDecoder',
            num_layers=3,
            layer_cfg=dict(
                depth_cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, attn_drop=0.1, proj_drop=0.1),
                self_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, attn_drop=0.1, proj_drop=0.1),
                cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, num_levels=num_levels, num_points=4,
                                    dropout=0.1),
                ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=256, num_fcs=2, ffn_drop=0.1,
                             act_cfg=dict(type='ReLU', inplace=True))))),
    bbox_head=dict(
        type='MonoDETRHead',
        num_classes=3,
        embed_dims=embed_dims,
        num_pred_layers=3,
        num_heading_bins=12,
        loss_cls=dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0),
        loss_center=dict(type='mmdet.L1Loss', loss_weight=10.0),
        loss_bbox=dict(type='mmdet.L1Loss', loss_weight=5.0),
        loss_iou=dict(type='mmdet.GIoULoss', loss_weight=2.0),
        loss_dim=dict(type='DimAwareL1Loss', loss_weight=1.0),
        loss_angle=dict(type='MultiBinLoss', num_bins=12, loss_weight=1.0),
        loss_depth=dict(type='LaplacianDepthLoss', loss_weight=1.0),
        loss_depth_map=dict(
            type='DDNLoss',
            num_depth_bins=num_depth_bins,
            depth_min=depth_min,
            depth_max=depth_max,
            alpha=0.25,
            gamma=2.0,
            fg_weight=13.,
            bg_weight=1.,
            loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(
            type='GroupHungarianAssigner',
            match_costs=[
                dict(type='mmdet.FocalLossCost', weight=2.0),
                dict(type='InstanceL1Cost', key='lrtb', weight=5.0),
                dict(type='mmdet.IoUCost', iou_mode='giou', weight=2.0),
                dict(type='InstanceL1Cost', key='centers_2d', weight=10.0),
            ])),
    test_cfg=dict(max_per_img=50, score_thr=0.2, depth_score=True))
