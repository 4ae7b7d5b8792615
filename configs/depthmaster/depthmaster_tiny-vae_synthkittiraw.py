# Stage 0 of the CPU-sized DepthMaster (not in the official recipe, which starts from SD2's VAE): the VAE, trained
# from scratch, learns to reconstruct the synthetic frames and their normalised square-root disparity targets.
#   OMP_NUM_THREADS=1 python tools/train.py configs/depthmaster/depthmaster_tiny-vae_synthkittiraw.py
_base_ = ['./depthmaster_tiny-stage1_synthkittiraw.py']

model = dict(train_stage=0, align_encoder=None)
max_iters = 1000
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50)]
train_cfg = dict(max_iters=max_iters)
