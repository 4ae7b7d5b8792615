# The upper bound of dfa3d_bevformer_r18_tiny_synthnuscenes.py: DFA3D fed the ground-truth depth distribution (the
# one-hot 0.5 m bin of the nearest LiDAR depth in each 32x32 patch, zero where no point falls, nearest-resized to
# both levels) instead of the depth head's, in training and testing; the test pipeline loads the points for it.
_base_ = ['./dfa3d_bevformer_r18_tiny_synthnuscenes.py']

model = dict(depth_source='lidar')
test_pipeline = [
    dict(type='LoadMultiViewImages', to_float32=True),
    dict(type='mmdet3d.LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='MultiViewResizeCropFlip', final_size={{_base_.image_size}}, training=False),
    dict(type='PackMultiViewInputs', keys=('img', 'points'))
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline, modality=dict(use_camera=True, use_lidar=True)))
test_dataloader = val_dataloader
