# A DepthMaster small enough to train on the CPU (a 2-level UNet of 32/64 channels, a 4-level VAE of 16 channels)
# on the synthetic KITTI raw drives (`python tools/create_data.py synthetic-kitti-raw --out data/synthkitti_raw`):
# stage 1, latent MSE + feature alignment to a frozen random-init ResNet-18 (width 16; its stride-16 map, 64
# channels). A TiO-Depth encoder trained on the same world can take its place through its init_cfg. The VAE, trained
# from scratch, comes first (depthmaster_tiny-vae_synthkittiraw.py):
#   OMP_NUM_THREADS=1 python tools/train.py configs/depthmaster/depthmaster_tiny-stage1_synthkittiraw.py \
#       --cfg-options model.init_from=work_dirs/depthmaster_tiny-vae_synthkittiraw/iter_1000.pth
#   OMP_NUM_THREADS=1 python tools/test.py configs/depthmaster/depthmaster_tiny-stage1_synthkittiraw.py CKPT
_base_ = ['./depthmaster_sd2_stage1.py']

model = dict(
    unet=dict(
        _delete_=True,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'),
        up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D'),
        block_out_channels=(32, 64),
        layers_per_block=1,
        norm_num_groups=8,
        attention_head_dim=8,
        cross_attention_dim=32),
    vae=dict(block_out_channels=(16, 16, 16, 16), layers_per_block=1, norm_num_groups=8, sample_size=64),
    align_encoder=dict(type='mmdet.ResNet', depth=18, base_channels=16, num_stages=3, strides=(1, 2, 2),
                       dilations=(1, 1, 1), out_indices=(2, ),
                       norm_eval=True, init_cfg=None),
    align_dim=64,
    align_proj_dim=128)

input_size = (320, 96)  # (W, H)
data_root = 'data/synthkitti_raw/'
meta_keys = ('img_path', 'ori_shape', 'img_shape', 'scale_factor', 'gt_depth')
# No crop or flip: the model resizes gt_depth (in the meta information) to the image.
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=input_size, keep_ratio=False),
    dict(type='mmdet3d.Pack3DDetInputs', keys=['img'], meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='KittiRawDepthDataset',
        data_root=data_root + 'raw/',
        ann_file='../splits/eigen_zhou/train_files.txt',
        with_stereo=False,
        depth_source='png',
        depth_root=data_root + 'depth/train/',
        pipeline=pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='KittiRawDepthDataset',
        data_root=data_root + 'raw/',
        ann_file='../splits/eigen/test_files.txt',
        with_stereo=False,
        depth_source='velodyne',
        pipeline=pipeline,
        test_mode=True))
# Evaluated by tools/test.py only (no validation during training).
val_dataloader = None
val_cfg = None
val_evaluator = None
test_cfg = dict(type='TestLoop')

max_iters = 2000
optim_wrapper = dict(optimizer=dict(lr=3e-4), accumulative_counts=1, clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=100),
    dict(type='ExponentialLR', gamma=0.01**(1 / max_iters), by_epoch=False, begin=100, end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(checkpoint=dict(interval=500, max_keep_ckpts=1), logger=dict(interval=10))
