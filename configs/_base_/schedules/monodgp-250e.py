# MonoDGP's official schedule: MonoDETR's optimiser (AdamW 2e-4, weight decay 1e-4 except biases) for 250
# epochs with x0.5 decays at 85, 125, 165 and 205, validated every 5 epochs; for a batch of 8.
_base_ = ['./monodetr-195e.py']

max_epochs = 250
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[85, 125, 165, 205], gamma=0.5)
]
auto_scale_lr = dict(base_batch_size=8)
