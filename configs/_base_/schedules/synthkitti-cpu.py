# A schedule for training from scratch on the synthetic KITTI world on 2 CPU cores: iterations rather than epochs,
# AdamW at 1e-3 after a 20-iteration linear warm-up, x0.1 for the last 15 %, the gradient norm clipped at 10.
# Chosen by measurement (MonoDETR, 300 iterations of batch 4 at 480x144, Car AP2D|R40 moderate at IoU 0.5 on the
# 200 val frames; configs/monodetr/README.md): 5e-4 (with photometric distortion) 5.9, 1e-3 15.8, 2e-3 4.4;
# batch 2 for 600 iterations at 1e-3 13.0.
max_iters = 300
warmup_iters = 20
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4, fused=True),
    paramwise_cfg=dict(bias_decay_mult=0.),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end=warmup_iters, by_epoch=False),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[round(max_iters * 0.85)],
         gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=4)
