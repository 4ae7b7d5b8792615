# BEVFormer + DFA3D sized for 2 CPU cores on the synthetic nuScenes world (docs/synthetic_world.md), from scratch:
#   python tools/create_data.py synthetic-nuscenes --out data/synthnuscenes --image-scale 0.25
#   python tools/create_data.py nuscenes --root data/synthnuscenes --version v1.0-synth
# ResNet-18 (trainable BN, no pretrained weights), 2-level FPN (strides 16, 32) of 64 channels, 6 views at 192x96,
# BEV 25x25 (4.1 m cells) from 2 encoder layers, 3 decoder layers of 100 queries, the depth head on the stride-32
# level (112 bins over 2-58 m, 24 codes), 600 iterations of batch 2. Everything else is dfa3d_bevformer-small.
_base_ = ['./dfa3d_bevformer-small_r101-dcn_24e_nuscenes.py']

embed_dims = 64
data_root = 'data/synthnuscenes/'
batch_size = 2
max_iters = 600
image_size = (192, 96)

model = dict(
    depth_level=1,
    data_preprocessor=dict(std=[57.375, 57.120, 58.395]),
    backbone=dict(depth=18, out_indices=(2, 3), frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True),
                  norm_eval=False, style='pytorch', dcn=None, stage_with_dcn=(False, False, False, False),
                  init_cfg=None),
    neck=dict(in_channels=[256, 512], out_channels=embed_dims, add_extra_convs=False, num_outs=2),
    depth_head=dict(in_channels=embed_dims, mid_channels=embed_dims),
    encoder=dict(bev_h=25, bev_w=25, embed_dims=embed_dims, num_layers=2, num_heads=4, feedforward_channels=128,
                 dropout=0.0, num_levels=2),
    pts_bbox_head=dict(embed_dims=embed_dims, num_query=100, num_layers=3, num_heads=4, feedforward_channels=128,
                       dropout=0.0))

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        pipeline=[
            dict(type='LoadMultiViewImages', to_float32=True),
            dict(type='mmdet3d.LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
            dict(type='mmdet3d.LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
            dict(type='mmdet3d.ObjectRangeFilter', point_cloud_range={{_base_.point_cloud_range}}),
            dict(type='mmdet3d.ObjectNameFilter', classes={{_base_.class_names}}),
            dict(type='MultiViewResizeCropFlip', final_size=image_size, resize_lim=(0.48, 0.55), rand_flip=True),
            dict(type='PackMultiViewInputs', keys=('img', 'points', 'gt_bboxes_3d', 'gt_labels_3d'))
        ]))
test_pipeline = [
    dict(type='LoadMultiViewImages', to_float32=True),
    dict(type='MultiViewResizeCropFlip', final_size=image_size, training=False),
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
