# MonoDETR's CPU model: trained from scratch on the synthetic KITTI world on 2 CPU cores, 300 iterations (the base
# of the main job's config monodetr_r18_main-job_synthkitti-mono3d.py, of the learning run's and of MonoDGP's CPU
# configs). Layers, heads, queries, groups, losses and matching are the official ones, at a CPU size:
# ResNet-18 from scratch (every stage and BatchNorm trains), 128 channels in the transformer (its matrix products
# cost a quarter of those at 256), no dropout (a short schedule on a small synthetic set: it only slows learning
# down). Data (480x144) and schedule (iterations, warm-up, AdamW 1e-3): _base_/datasets/synthkitti-mono3d.py and
# _base_/schedules/synthkitti-cpu.py; the measurements behind them are in configs/monodetr/README.md.
_base_ = [
    '../_base_/models/monodetr_r50.py', '../_base_/datasets/synthkitti-mono3d.py',
    '../_base_/schedules/synthkitti-cpu.py', '../_base_/default_runtime.py'
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

log_processor = dict(by_epoch=False, window_size=10)
default_hooks = dict(
    # validation metrics logged at the iteration (mmengine's default is the epoch: 0 in an iteration-based loop)
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', interval={{_base_.max_iters}}, by_epoch=False, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=444)
