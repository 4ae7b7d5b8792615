# MonoDETR sized for 2 CPU cores, on the synthetic KITTI world: ResNet-18 from scratch, 640x192 input and
# 128 channels in the transformer (its matrix products cost a quarter of those at 256). Layers, heads,
# queries, groups, losses and matching are the official ones; dropout is off (a few epochs on a small
# synthetic set: it only slows learning down here, and its random masks took 13 % of the CPU time of a
# training step). The main job (`make demo`, tools/demo/main_job.py) trains one epoch over the first 400
# frames (train_dataloader.dataset.indices=400); the learning proof is monodetr_r18_8e_synthkitti-mono3d.py.
_base_ = [
    '../_base_/models/monodetr_r50.py', '../_base_/datasets/synthkitti-mono3d.py',
    '../_base_/schedules/monodetr-195e.py', '../_base_/default_runtime.py'
]

embed_dims = 128

model = dict(
    backbone=dict(
        depth=18,
        # no ImageNet weights: every stage trains, with trainable BatchNorm
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[128, 256, 512], out_channels=embed_dims),
    positional_encoding=dict(num_feats=embed_dims // 2),
    depth_predictor=dict(embed_dims=embed_dims, dropout=0.),
    transformer=dict(
        encoder=dict(
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=embed_dims, dropout=0.),
                ffn_cfg=dict(embed_dims=embed_dims, ffn_drop=0.))),
        decoder=dict(
            layer_cfg=dict(
                depth_cross_attn_cfg=dict(embed_dims=embed_dims, attn_drop=0., proj_drop=0.),
                self_attn_cfg=dict(embed_dims=embed_dims, attn_drop=0., proj_drop=0.),
                cross_attn_cfg=dict(embed_dims=embed_dims, dropout=0.),
                ffn_cfg=dict(embed_dims=embed_dims, ffn_drop=0.)))),
    bbox_head=dict(embed_dims=embed_dims))

max_epochs = 1
train_cfg = dict(max_epochs=max_epochs, val_interval=1, val_begin=max_epochs + 1)
param_scheduler = [dict(type='ConstantLR', factor=1.0, begin=0, end=max_epochs, by_epoch=True)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=444)
