# DepthMaster stage 1 at the official sizes (indu1ge/DepthMaster: config/train_s1.yaml): Stable Diffusion 2's UNet
# (865 M parameters) and VAE, the empty-text embedding (1, 2, 1024), latent MSE + feature alignment (lambda 1) to a
# frozen external encoder. The official encoder, DINOv2-G of Depth-Anything-V2-Giant (token width 1536), is not
# released (indu1ge/DepthMaster#5): set model.align_encoder to a registered image model and model.align_dim to its
# token width. Start from a local SD2 folder: model.official_dir='stable-diffusion-2' (its unet/, vae/, text_encoder/).
# Data: Hypersim (p 0.9, 480x640) + Virtual KITTI 2 (p 0.1), not shipped here; see README.md.
_base_ = ['../_base_/default_runtime.py']

sd2_unet = dict(  # stabilityai/stable-diffusion-2 unet/config.json
    sample_size=96,
    in_channels=4,
    out_channels=4,
    down_block_types=('CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'),
    up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'),
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    attention_head_dim=(5, 10, 20, 20),
    cross_attention_dim=1024,
    use_linear_projection=True)
sd2_vae = dict(  # vae/config.json
    in_channels=3,
    out_channels=3,
    down_block_types=('DownEncoderBlock2D', ) * 4,
    up_block_types=('UpDecoderBlock2D', ) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    sample_size=768,
    scaling_factor=0.18215)

model = dict(
    type='DepthMaster',
    data_preprocessor=dict(
        type='mmdet3d.Det3DDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.], bgr_to_rgb=True),
    unet=sd2_unet,
    vae=sd2_vae,
    text_embed_len=2,
    train_stage=1,
    fourier_block=False,
    # align_encoder=dict(type=...),  see above (none: no feature alignment)
    align_dim=1536,
    align_proj_dim=1536,
    align_weight=1.0,
    align_input_scale=0.875,
    align_official_input=True,
    quantile=0.02,
    processing_res=0)

# lr 3e-5, 100 warm-up iterations, exponential decay to 1 % over 25k iterations (IterExponential), 20k
# iterations of an effective batch of 32 (8 x 4 accumulated).
max_iters = 20000
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=3e-5), accumulative_counts=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=100),
    dict(type='ExponentialLR', gamma=0.01**(1 / 25000), by_epoch=False, begin=100, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000, max_keep_ckpts=2),
                     visualization=dict(_delete_=True, type='mmengine.RuntimeInfoHook'))
log_processor = dict(by_epoch=False)

# Affine-invariant evaluation in square-root disparity space (the official --alignment least_square_sqrt_disp).
depth_metric = dict(type='DepthMetric', crop='none', scaling='lsq-sqrt-disparity', pred_is_disparity=True,
                    pred_key='pred_sqrt_disparity', min_depth=1e-3, max_depth=80.)
val_evaluator = depth_metric
test_evaluator = depth_metric
