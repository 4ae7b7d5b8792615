# MonoDETR sized for 2 CPU cores, on the synthetic KITTI world
# (`python tools/create_data.py synthetic-kitti --out data/synthkitti`): ResNet-18 from scratch, 640x192
# input and 128 channels in the transformer (its matrix products cost a quarter of those at 256).
# Layers, heads, queries, groups, losses and matching are the official ones of monodetr_kitti.py;
# dropout is off (a few epochs on a small synthetic set: it only slows learning down here, and its
# random masks took 13 % of the CPU time of a training step).
_base_ = ['./monodetr_kitti.py']

data_root = 'data/synthkitti/'
input_size = (640, 192)  # (W, H)
backend_args = None
embed_dims = 128

model = dict(
    backbone=dict(
        depth=18,
        # no ImageNet weights: every stage trains, with trainable BatchNorm
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False),
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

train_pipeline = [
    dict(type='LoadImageMono3D', backend_args=backend_args),
    dict(type='LoadAnnotationsMono3D', with_alpha=True),
    dict(type='mmdet.PhotoMetricDistortion'),
    dict(type='RandomFlipMono3D', prob=0.5),
    dict(type='RandomCropScaleMono3D', out_size=input_size, prob=0.5, scale=0.05, shift=0.05),
    dict(type='FilterMono3DInstances', min_depth=2.0, max_depth=65.0),
    dict(type='PackMono3DInputs'),
]
test_pipeline = [
    dict(type='LoadImageMono3D', backend_args=backend_args),
    dict(type='RandomCropScaleMono3D', out_size=input_size, prob=0.0),
    dict(type='PackMono3DInputs', keys=['img']),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_dir=data_root + 'training/label_2')
test_evaluator = val_evaluator

# The main job (tools/demo/main_job.py) trains one epoch over the first 400 frames
# (train_dataloader.dataset.indices=400) and tests with tools/test.py; the learning proof is
# monodetr_r18_synthkitti_long.py.
max_epochs = 1
train_cfg = dict(max_epochs=max_epochs, val_interval=1, val_begin=max_epochs + 1)
param_scheduler = [dict(type='ConstantLR', factor=1.0, begin=0, end=max_epochs, by_epoch=True)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
