# The synthetic KITTI raw drives (`python tools/create_data.py synthetic-kitti-raw --out data/synthkitti_raw`)
# as stereo pairs at 320x96 for the CPU: 258 training views of 3 drives, tested on the 50 frames of the
# held-out drive.
_base_ = ['./kittiraw-depth.py']

data_root = 'data/synthkitti_raw/raw/'
input_size = (320, 96)  # (W, H)

train_pipeline = [
    *_base_.train_pipeline[:2],
    dict(
        _base_.train_pipeline[2],
        transforms=[
            # scales of 1-1.5 so that the crop always fits (official: 0.75-1.5 of 1280x384, crop 832x256)
            dict(type='RandomResize', scale=input_size, ratio_range=(1.0, 1.5), keep_ratio=False),
            dict(type='mmdet.RandomCrop', crop_size=input_size),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        ]),
    *_base_.train_pipeline[3:],
]
test_pipeline = [
    *_base_.test_pipeline[:2],
    dict(_base_.test_pipeline[2], transforms=[dict(type='Resize', scale=input_size, keep_ratio=False)]),
    *_base_.test_pipeline[3:],
]

train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(data_root=data_root, ann_file='../splits/eigen_zhou/train_files.txt', pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, ann_file='../splits/eigen/test_files.txt', pipeline=test_pipeline))
test_dataloader = val_dataloader
