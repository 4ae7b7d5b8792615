# TiO-Depth's official schedule: 50 epochs, one Adam per loss stage (lr 1e-4, betas 0.5/0.999; the decoder at
# 0.1x in the stereo and refine stages), each halved at the official milestones; validated every 5 epochs.
max_epochs = 50

adam = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.999)))
optim_wrapper = dict(
    constructor='StagewiseOptimWrapperConstructor',
    mono=adam,
    stereo=adam,
    refine=adam,
    paramwise_cfg=dict(stereo=dict(decoder=0.1), refine=dict(decoder=0.1)))

param_scheduler = dict(
    mono=[dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[20, 30, 40, 45], gamma=0.5)],
    stereo=[dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[30, 40, 45], gamma=0.5)],
    refine=[dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[40, 45], gamma=0.5)])

train_cfg = dict(type='StagewiseTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
