# Stage 2 of the CPU-sized DepthMaster: the Fourier enhancement block and the pixel losses, from a stage-1 run.
#   OMP_NUM_THREADS=1 python tools/train.py configs/depthmaster/depthmaster_tiny-stage2_synthkittiraw.py \
#       --cfg-options model.init_from=work_dirs/depthmaster_tiny-stage1_synthkittiraw/iter_2000.pth
_base_ = ['./depthmaster_tiny-stage1_synthkittiraw.py']

model = dict(train_stage=2, fourier_block=True, align_encoder=None)
optim_wrapper = dict(optimizer=dict(lr=3e-5))
