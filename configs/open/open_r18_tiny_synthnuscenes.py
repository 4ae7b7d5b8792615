# OPEN sized for 2 CPU cores on the synthetic nuScenes world (docs/synthetic_world.md), from scratch:
#   python tools/create_data.py synthetic-nuscenes --out data/synthnuscenes --image-scale 0.25
#   python tools/create_data.py nuscenes --root data/synthnuscenes --version v1.0-synth
# ResNet-18 (trainable BN, no pretrained weights), 64 channels, 6 views at 192x96 (the 400x225 images scaled by
# 0.48-0.55), 3 decoder layers, 100 queries + 32 propagated, memory 128, 5 denoising groups. Everything else
# (losses, weights, matching, memory queue, object-wise position embedding) is the official model.
_base_ = ['./open_r50_704x256_90e_nuscenes.py']

embed_dims = 64
data_root = 'data/synthnuscenes/'
batch_size = 2
max_iters = 600

model = dict(
    backbone=dict(depth=18, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, with_cp=False,
                  init_cfg=None),
    neck=dict(in_channels=[256, 512], out_channels=embed_dims),
    img_roi_head=dict(embed_dims=embed_dims, encoder=dict(feedforward_channels=256, num_heads=4, dropout=0.)),
    pts_bbox_head=dict(
        in_channels=embed_dims,
        embed_dims=embed_dims,
        num_query=100,
        memory_len=128,
        topk_proposals=32,
        num_propagated=32,
        scalar=5,
        decoder=dict(num_layers=3, num_heads=4, feedforward_channels=256, dropout=0., with_cp=False)))

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        data_root=data_root,
        pipeline=[
            dict(type='LoadMultiViewImages', to_float32=True),
            dict(type='mmdet3d.LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
            dict(type='mmdet3d.LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
            dict(type='mmdet3d.ObjectRangeFilter', point_cloud_range={{_base_.point_cloud_range}}),
            dict(type='mmdet3d.ObjectNameFilter', classes={{_base_.class_names}}),
            dict(type='MultiViewResizeCropFlip', final_size=(192, 96), resize_lim=(0.48, 0.55), rand_flip=True),
            dict(type='MultiViewBEVAug', rot_range=(-0.3925, 0.3925), scale_ratio_range=(0.95, 1.05)),
            dict(type='PackMultiViewInputs', keys=('img', 'points', 'gt_bboxes_3d', 'gt_labels_3d'))
        ]))
test_pipeline = [
    dict(type='LoadMultiViewImages', to_float32=True),
    dict(type='MultiViewResizeCropFlip', final_size=(192, 96), training=False),
    dict(type='PackMultiViewInputs', keys=('img', ))
]
val_dataloader = dict(num_workers=1, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(data_root=data_root, ann_file=data_root + 'nuscenes_infos_val.pkl')
test_evaluator = val_evaluator

# from scratch: no lower learning rate for the backbone
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min_ratio=1e-3, by_epoch=False, begin=0, end=max_iters)
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=10),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
