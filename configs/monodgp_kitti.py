# MonoDGP (CVPR 2025) on KITTI with the official defaults (PuFanqi23/MonoDGP configs/monodgp.yaml): MonoDETR's
# ResNet-50, 1280x384 input, 50 queries x 11 groups and 3-layer encoder, plus a 3-layer 2D decoder before the
# 3-layer depth-aware decoder, the region segmentation head, the geometry-error depth and MixUp3D (p 0.5);
# batch 8, AdamW 2e-4, 250 epochs with x0.5 decays at 85, 125, 165 and 205.
# ImageNet ResNet-50 weights are read from a local file only:
#   python tools/train.py configs/monodgp_kitti.py --cfg-options model.backbone_checkpoint=PATH.pth
_base_ = ['./monodetr_kitti.py']

model = dict(
    type='MonoDGP',
    # MonoDGP drops the depth positional embedding from the depth embeddings
    depth_predictor=dict(with_depth_pos_embed=False),
    region_head=dict(
        type='RegionSegHead',
        embed_dims={{_base_.embed_dims}},
        num_levels={{_base_.num_levels}},
        se_reduction=16,
        # the official Dice: sums over the whole batch of a level, smoothed by 1; summed over the levels
        loss_region=dict(
            type='mmdet.DiceLoss', use_sigmoid=True, activate=False, naive_dice=True, eps=1.0, loss_weight=1.0)),
    transformer=dict(
        type='MonoDGPTransformer',
        # as the official decoders (built with group_num=1): the 550 training queries attend to each other
        group_self_attn=False,
        decoder_2d=dict(
            type='Det2DDecoder',
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims={{_base_.embed_dims}}, num_heads=8, attn_drop=0.1, proj_drop=0.1),
                cross_attn_cfg=dict(embed_dims={{_base_.embed_dims}}, num_heads=8, num_levels={{_base_.num_levels}},
                                    num_points=4, dropout=0.1),
                ffn_cfg=dict(embed_dims={{_base_.embed_dims}}, feedforward_channels=256, num_fcs=2, ffn_drop=0.1,
                             act_cfg=dict(type='ReLU', inplace=True))))),
    bbox_head=dict(type='MonoDGPHead'))

train_pipeline = [
    dict(type='LoadImageMono3D', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotationsMono3D', with_alpha=True),
    dict(type='mmdet.PhotoMetricDistortion'),
    dict(type='RandomFlipMono3D', prob=0.5),
    # the official order: photometric distortion and flip, MixUp3D, then the shared crop-and-scale
    dict(
        type='MixUp3D',
        prob=0.5,
        alpha=0.5,
        max_objects=50,
        max_tries=50,
        dataset=dict(
            type={{_base_.dataset_type}},
            data_root={{_base_.data_root}},
            ann_file='kitti_infos_train.pkl',
            data_prefix=dict(img='training/image_2'),
            metainfo={{_base_.metainfo}},
            backend_args={{_base_.backend_args}}),
        load_pipeline=[
            dict(type='LoadImageMono3D', backend_args={{_base_.backend_args}}),
            dict(type='LoadAnnotationsMono3D', with_alpha=True),
        ]),
    dict(type='RandomCropScaleMono3D', out_size={{_base_.input_size}}, prob=0.5, scale=0.05, shift=0.05),
    dict(type='FilterMono3DInstances', min_depth=2.0, max_depth=65.0),
    dict(type='PackMono3DInputs'),
]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=train_pipeline))

max_epochs = 250
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[85, 125, 165, 205], gamma=0.5)
]
auto_scale_lr = dict(enable=False, base_batch_size=8)
