# MonoDGP sized for 2 CPU cores, on the synthetic KITTI world: monodetr_r18_demo_synthkitti-mono3d.py (its
# data, ResNet-18 from scratch, 480x144 input, 128 channels, dropout off, schedule) with MonoDGP's parts of
# _base_/models/monodgp_r50.py at that size, and MixUp3D after the flip as in monodgp_r50_250e_kitti-mono3d.py.
_base_ = ['../monodetr/monodetr_r18_demo_synthkitti-mono3d.py']

model = dict(
    type='MonoDGP',
    depth_predictor=dict(with_depth_pos_embed=False),
    region_head=dict(
        type='RegionSegHead',
        embed_dims={{_base_.embed_dims}},
        num_levels={{_base_.num_levels}},
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
                cross_attn_cfg=dict(embed_dims={{_base_.embed_dims}}, num_heads=8, num_levels={{_base_.num_levels}},
                                    num_points=4, dropout=0.),
                ffn_cfg=dict(embed_dims={{_base_.embed_dims}}, feedforward_channels=256, num_fcs=2, ffn_drop=0.,
                             act_cfg=dict(type='ReLU', inplace=True))))),
    bbox_head=dict(type='MonoDGPHead'))

train_pipeline = [
    *_base_.train_pipeline[:3],
    dict(
        type='MixUp3D',
        prob=0.5,
        alpha=0.5,
        max_objects=50,
        max_tries=50,
        dataset=dict(
            type=_base_.dataset_type,
            data_root=_base_.data_root,
            ann_file='kitti_infos_train.pkl',
            data_prefix=dict(img='training/image_2'),
            metainfo=_base_.metainfo,
            backend_args=_base_.backend_args),
        load_pipeline=_base_.train_pipeline[:2]),
    *_base_.train_pipeline[3:],
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
