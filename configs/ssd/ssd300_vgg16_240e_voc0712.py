# SSD300 on VOC07+12 trainval, tested on VOC07 test: 20 classes and the VOC anchor range (0.2, 0.9).
# 24 epochs over the dataset repeated 10 times = 240 epochs.
_base_ = ['./ssd300_vgg16_120e_coco.py']

model = dict(bbox_head=dict(num_classes=20, anchor_generator=dict(basesize_ratio_range=(0.2, 0.9))))

dataset_type = 'mmdet.VOCDataset'
data_root = 'data/VOCdevkit/'
train_pipeline = {{_base_.train_pipeline}}
test_pipeline = {{_base_.test_pipeline}}
train_dataloader = dict(
    dataset=dict(
        times=10,
        dataset=dict(
            _delete_=True,
            type='ConcatDataset',
            # VOCDataset sets a different `dataset_type` in each metainfo, which ConcatDataset rejects.
            ignore_keys=['dataset_type'],
            datasets=[
                dict(
                    type=dataset_type,
                    data_root=data_root,
                    ann_file=f'VOC{year}/ImageSets/Main/trainval.txt',
                    data_prefix=dict(sub_data_root=f'VOC{year}/'),
                    filter_cfg=dict(filter_empty_gt=True, min_size=32),
                    pipeline=train_pipeline) for year in (2007, 2012)
            ])))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='VOC2007/ImageSets/Main/test.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='mmdet.VOCMetric', metric='mAP', eval_mode='11points')
test_evaluator = val_evaluator

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=24, by_epoch=True, milestones=[16, 20], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=1e-3))
