# A tiny config for the tools tests: trains ToyRegressor on ToyDataset with the real Runner.
default_scope = 'perception'
custom_imports = dict(imports=['perception.testing.toy_task'], allow_failed_imports=False)

model = dict(type='ToyRegressor', in_dim=4, hidden=16)

train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='ToyDataset', num_samples=32, seed=0))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='ToyDataset', num_samples=16, seed=1, augment=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='ToyMSEMetric')
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=4, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[3], gamma=0.1)]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=2),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
               dist_cfg=dict(backend='gloo'))
log_level = 'INFO'
randomness = dict(seed=0)
load_from = None
resume = False
