# TiO-Depth (ICCV 2023) as the official code builds it (ZM-Zhou/TiO-Depth_pytorch:
# options/_base/networks/tio_depth.yaml): Swin-T with an overlapping stride-2 patch embedding, decoder
# channels 64-128-256-256, 49 exponential disparity bins over 2-300 px at 1280 px width, three cumulative
# loss stages (mono from epoch 1, stereo from 21, refine from 31, counted from 1).
model = dict(
    type='TiODepth',
    data_preprocessor=dict(
        type='mmdet3d.Det3DDataPreprocessor',
        # the model takes images in [0, 1] and normalises them itself
        mean=[0., 0., 0.],
        std=[255., 255., 255.],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='mmdet.SwinTransformer',
        embed_dims=96,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        patch_size=2,
        strides=(2, 2, 2, 2),
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3,
        patch_norm=True,
        convert_weights=True,
        # the ImageNet Swin-T of the Swin repository, read from a local file only (configs/tiodepth/README.md);
        # its 4x4 patch embedding fits the overlapping stride-2 one (patch_embed_kernel=4)
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/swin_tiny_patch4_window7_224.pth')),
    patch_embed_kernel=4,
    decoder_channels=(64, 128, 256, 256),
    num_bins=49,
    min_disp=2.,
    max_disp=300.,
    mfm_levels=(3, 2, 1),
    distill_levels=(3, 2, 1),
    focal_baseline=400.9,
    stage_start_epochs=(0, 20, 30),
    # torchvision's vgg19 state dict for the perceptual loss; None switches that loss off
    vgg_checkpoint=None,
    # 'refine' is the paper's monocular result, 'stereo' its binocular one
    test_out_modes=('refine', 'stereo', 'mono'))
