# The main job (`make demo`, tools/demo/main_job.py): MonoDETR trained from scratch on the synthetic KITTI world
# in about 9 of its 15 minutes on 2 CPU cores. The CPU model of monodetr_r18_demo_synthkitti-mono3d.py (ResNet-18
# from scratch, 480x144, 128 channels, no dropout; the official layers, groups, losses and matching) with what
# makes an iteration 1.8x faster, spent on 550 iterations instead of 300 (measured in configs/monodetr/README.md):
# - 25 queries per group instead of 50: a synthetic frame holds at most 14 cars, pedestrians and cyclists
#   (6.6 on average), and the 11 groups of 50 queries cost a quarter of an iteration;
# - bfloat16 autocast (perception's CPUAmpOptimWrapper, what `tools/train.py --amp` selects on the CPU): 1.2x on
#   a CPU with AMX or AVX512-BF16 (tools/demo/main_job.py trains in float32 on one without);
# - x0.1 for the last 25 % of the iterations.
_base_ = ['./monodetr_r18_demo_synthkitti-mono3d.py']

model = dict(transformer=dict(num_queries=25))

max_iters = 550
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(type='CPUAmpOptimWrapper')  # bfloat16 by default
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end={{_base_.warmup_iters}}, by_epoch=False),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[round(max_iters * 0.75)],
         gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
