# The SparseNeRF depth-ranking loss on the monocular stage of TiO-Depth
# (tiodepth-mono_swin-w32_12e_synthkittiraw-depth.py, same schedule): the teacher is OpenCV's semi-global matching on the training pair (StereoPseudoDisparity,
# after the crop and flip), trusted for its local order only; 256 pairs per image in a 30x30 box.
_base_ = ['./tiodepth-mono_swin-w32_12e_synthkittiraw-depth.py']

model = dict(loss_ranking=dict(type='DepthRankingLoss', num_pairs=256, box_size=(30, 30), loss_weight=1.0))
train_pipeline = [
    *_base_.train_pipeline[:3],
    dict(type='StereoPseudoDisparity', num_disparities=80, block_size=5),
    _base_.train_pipeline[3],
    dict(_base_.train_pipeline[4], meta_keys=_base_.train_pipeline[4].meta_keys + ('depth_prior', )),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
