# MonoDGP (CVPR 2025) on MonoDETR's model, as the official code builds it (PuFanqi23/MonoDGP
# configs/monodgp.yaml): a 3-layer 2D decoder before the depth-aware decoder, the region segmentation head
# and the geometry-error depth (MonoDGPHead); no depth positional embedding.
_base_ = ['./monodetr_r50.py']

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
