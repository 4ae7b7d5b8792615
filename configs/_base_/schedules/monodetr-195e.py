# MonoDETR's official schedule: AdamW 2e-4, weight decay 1e-4 except biases, no gradient clipping,
# 195 epochs with x0.1 decays at 125 and 165, validated every 5 epochs; for a batch of 16. `fused`: torch's
# single-kernel AdamW, the same update (a third of the foreach implementation's time on the CPU).
max_epochs = 195
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4, fused=True),
    paramwise_cfg=dict(bias_decay_mult=0.))
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[125, 165], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
