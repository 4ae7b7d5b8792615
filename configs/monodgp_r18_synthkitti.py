# MonoDGP sized for 2 CPU cores, on the synthetic KITTI world
# (`python tools/create_data.py synthetic-kitti --out data/synthkitti`): monodetr_r18_synthkitti.py (its data,
# ResNet-18 from scratch, 640x192 input, 128 channels, dropout off, schedule) with MonoDGP's changes as in
# monodgp_kitti.py: the region segmentation head, the 2D decoder before the depth-aware one, the
# geometry-error depth, no depth positional embedding, and MixUp3D.
_base_ = ['./monodetr_r18_synthkitti.py']

model = dict(
    type='MonoDGP',
    depth_predictor=dict(with_depth_pos_embed=False),
    region_head=dict(
        type='RegionSegHead',
        embed_dims={{_base_.embed_dims}},
        num_levels=4,
        se_reduction=16,
        loss_region=dict(
            type='mmdet.DiceLoss', use_sigmoid=True, activate=False, naive_dice=True, eps=1.0, loss_weight=1.0)),
    transformer=dict(
        type='MonoDGPTransformer',
        group_self_attn=False,
        decoder_2d=dict(
            type='Det2DDecoder',
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims={{_base_.embed_dims}}, num_heads=8, attn_drop=0., proj_drop=0.),
                cross_attn_cfg=dict(embed_dims={{_base_.embed_dims}}, num_heads=8, num_levels=4, num_points=4,
                                    dropout=0.),
                ffn_cfg=dict(embed_dims={{_base_.embed_dims}}, feedforward_channels=256, num_fcs=2, ffn_drop=0.,
                             act_cfg=dict(type='ReLU', inplace=True))))),
    bbox_head=dict(type='MonoDGPHead'))

train_pipeline = [
    dict(type='LoadImageMono3D', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotationsMono3D', with_alpha=True),
    dict(type='mmdet.PhotoMetricDistortion'),
    dict(type='RandomFlipMono3D', prob=0.5),
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
