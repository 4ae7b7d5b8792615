# ChronoDepth at the official sizes: Stable Video Diffusion img2vid-xt's UNet (8 input channels, 1.52 B
# parameters), temporal-decoder VAE, Euler scheduler and the ViT-H CLIP embedding (1024), with the official
# inference defaults (jiahao-shao1/ChronoDepth: run_infer.py). Load the official release from local folders:
#   python tools/model_converters/chronodepth_to_perception.py ChronoDepth-v1/ ChronoDepth/ chronodepth_v1.pth
# or set model.official_dirs=dict(unet='ChronoDepth-v1', base='ChronoDepth').
_base_ = ['../_base_/default_runtime.py']

model = dict(
    type='ChronoDepth',
    unet=dict(  # diffusers' UNetSpatioTemporalConditionModel, SVD img2vid-xt's unet/config.json
        in_channels=8,
        out_channels=4,
        down_block_types=('CrossAttnDownBlockSpatioTemporal', 'CrossAttnDownBlockSpatioTemporal',
                          'CrossAttnDownBlockSpatioTemporal', 'DownBlockSpatioTemporal'),
        up_block_types=('UpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal',
                        'CrossAttnUpBlockSpatioTemporal'),
        block_out_channels=(320, 640, 1280, 1280),
        addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=768,
        layers_per_block=2,
        cross_attention_dim=1024,
        transformer_layers_per_block=1,
        num_attention_heads=(5, 10, 20, 20),
        num_frames=25),
    vae=dict(  # AutoencoderKLTemporalDecoder, SVD's vae/config.json
        in_channels=3,
        out_channels=3,
        down_block_types=('DownEncoderBlock2D', ) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        sample_size=768,
        scaling_factor=0.18215),
    scheduler=dict(  # EulerDiscreteScheduler, SVD's scheduler/scheduler_config.json
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule='scaled_linear',
        prediction_type='v_prediction',
        interpolation_type='linear',
        use_karras_sigmas=True,
        sigma_min=0.002,
        sigma_max=700.0,
        timestep_spacing='leading',
        timestep_type='continuous',
        steps_offset=1),
    num_inference_steps=5,
    n_tokens=10,
    chunk_size=5,
    sigma_epsilon=-4.0,
    infer_mode='ours',
    official_numerics=True,
    max_res=1024,
    decode_chunk_size=8,
    fps=7,
    motion_bucket_id=127,
    noise_aug_strength=0.0)
