# StageInteractor R50 1x on COCO: 6 stages, 100 queries, 1333x800, AdamW 2.5e-5, 12 epochs.
# Backbone, ChannelMapper, Hungarian assigner and losses are mmdet's; the decoder is perception's.
_base_ = [
    '../_base_/models/stageinteractor_r50.py', '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/mmdet-schedule-1x.py'
]

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2.5e-5, weight_decay=0.0001),
    clip_grad=dict(max_norm=1.0, norm_type=2))
