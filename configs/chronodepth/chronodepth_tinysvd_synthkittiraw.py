# TinySVD: a ChronoDepth small enough to train on the CPU (a 2-level spatio-temporal UNet of 32/64 channels,
# a 4-level VAE of 32 channels, 1.7 M parameters in all) for the synthetic KITTI raw drives
# (`python tools/create_data.py synthetic-kitti-raw --out data/synthkitti_raw`). Stages: 'vae' (stage 0, the
# VAE learns to reconstruct frames and depth maps), then 'spatial', then 'temporal' (--cfg-options
# model.train_stage=...; load_from the previous stage's checkpoint). Sizes and schedule chosen by measurement
# on one CPU thread (configs/chronodepth/README.md, "Learning proof"): 192x64 frames (0.7-1.3 s per UNet
# iteration, 2.2 s per VAE iteration on clips of 4), lr 5e-4 after 100 warm-up iterations (a UNet from scratch,
# not SVD's pretrained one), 1500 iterations for the spatial stage; the VAE and temporal stages override the
# schedule on the command line.
_base_ = ['./chronodepth_svd_official.py']

model = dict(
    unet=dict(
        _delete_=True,
        in_channels=8,
        out_channels=4,
        down_block_types=('CrossAttnDownBlockSpatioTemporal', 'DownBlockSpatioTemporal'),
        up_block_types=('UpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal'),
        block_out_channels=(32, 64),
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=24,
        layers_per_block=1,
        cross_attention_dim=32,
        num_attention_heads=(2, 4),
        num_frames=10),
    vae=dict(block_out_channels=(32, 32, 32, 32), layers_per_block=1, sample_size=64),
    max_res=192,
    seed=0,
    train_stage='spatial')

optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.01),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100)]
max_iters = 1500
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)

# Clips of 10 consecutive frames of the 3 training drives (every 5 frames, both cameras) at the size the
# inference runs at for KITTI-shaped frames with max_res=192 (192x64); the held-out drive 0004 is for
# tools/infer_video_depth.py and tools/analysis/video_depth_eval.py.
data_root = 'data/synthkitti_raw/'
train_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='KittiRawDepthClipDataset',
        data_root=data_root + 'raw/',
        depth_root=data_root + 'depth/train/',
        clip_len=10,
        clip_stride=5,
        cams=(2, 3),
        size=(192, 64)))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
