# DepthMaster stage 2 at the official sizes (config/train_s2.yaml): the stage-1 UNet with the Fourier enhancement
# block after its mid-block, pixel MSE + 1e-3 x the gradient "Huber" (delta 0.2, the official swapped regimes:
# model.huber='standard' for the textbook one), lr 3e-6, effective batch 32 (1 x 32 accumulated).
#   python tools/train.py configs/depthmaster/depthmaster_sd2_stage2.py --cfg-options model.init_from=STAGE1.pth
# The released model (Hugging Face zysong212/DepthMaster, a local folder) loads with
#   --cfg-options model.official_dir=DepthMaster
_base_ = ['./depthmaster_sd2_stage1.py']

model = dict(train_stage=2, fourier_block=True, fourier_groups=8, align_encoder=None, grad_weight=1e-3,
             grad_delta=0.2, huber='official')
optim_wrapper = dict(optimizer=dict(lr=3e-6), accumulative_counts=32)
