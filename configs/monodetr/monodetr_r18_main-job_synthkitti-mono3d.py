# The main job (`make demo`, tools/demo/main_job.py): MonoDETR trained from scratch on the synthetic KITTI world
# in about 8 of its 15 minutes on 2 CPU cores. The CPU model of monodetr_r18_demo_synthkitti-mono3d.py (ResNet-18
# from scratch, 128 channels, no dropout; the official layers, groups, losses and matching) with what makes an
# iteration about 2x faster, spent on 550 iterations instead of 300 (measured in configs/monodetr/README.md):
# - 25 queries per group instead of 50: a synthetic frame holds at most 14 cars, pedestrians and cyclists
#   (6.6 on average), and the 11 groups of 50 queries cost a quarter of an iteration;
# - bfloat16 autocast (perception's CPUAmpOptimWrapper, what `tools/train.py --amp` selects on the CPU): 1.2x on
#   a CPU with AMX or AVX512-BF16 (tools/demo/main_job.py trains in float32 on one without);
# - 384x112 input instead of 480x144 (the median val car, 40 px tall in the 1242x375 frame, is 12 px here):
#   0.75x the iteration time, Car AP2D (0.5) 37.3 against 38.0 after these 550 iterations;
# - x0.1 for the last 25 % of the iterations.
_base_ = ['./monodetr_r18_demo_synthkitti-mono3d.py']

model = dict(transformer=dict(num_queries=25))

input_size = (384, 112)  # (W, H)
# the pipelines of _base_/datasets/synthkitti-mono3d.py at this size (mmengine resolves input_size at parse time)
train_pipeline = [
    dict(type='LoadImageMono3D', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotationsMono3D'),
    dict(type='RandomFlipMono3D', prob=0.5),
    dict(type='RandomCropScaleMono3D', out_size=input_size, prob=0.5, scale=0.05, shift=0.05),
    dict(type='FilterMono3DInstances', min_depth=2.0, max_depth=65.0),
    dict(type='PackMono3DInputs'),
]
test_pipeline = [
    dict(type='LoadImageMono3D', backend_args={{_base_.backend_args}}),
    dict(type='RandomCropScaleMono3D', out_size=input_size, prob=0.0),
    dict(type='PackMono3DInputs', keys=['img']),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 550
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(type='CPUAmpOptimWrapper')  # bfloat16 by default
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end={{_base_.warmup_iters}}, by_epoch=False),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[round(max_iters * 0.75)],
         gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
