# MonoDGP as the official code (PuFanqi23/MonoDGP aa059a1) runs it: for checkpoints converted from the
# official ones, whose detections it reproduces (docs/model_zoo.md; tests/models/parity/).
#   python tools/model_converters/monodgp_official.py checkpoint_best.pth checkpoints/monodgp_official.pth
#   python tools/test.py configs/monodgp/monodgp_r50_official_kitti.py checkpoints/monodgp_official.pth
# Each option below switches one official behaviour on; the project's default, kept for training from
# scratch, is the one the comment names and why it differs. MonoDGP's decoders have no extra query/key maps
# (only MonoDETR's do) and its depth does not read the depth map.
_base_ = ['./monodgp_r50_250e_kitti-mono3d.py']

model = dict(
    # the converted checkpoint holds the whole backbone
    backbone=dict(init_cfg=None),
    # official: the input projections have a bias before their GroupNorm (which does not cancel it, the
    # groups span 8 channels); default: mmdet's 'auto' leaves it out, as a bias before a norm is redundant
    # per channel and the official one is not per group
    neck=dict(bias=True),
    bbox_head=dict(
        # official: d_geo = f_u H_3D / ((t + b) H) with the unadjusted P2 and the original image height;
        # default: f_v of the camera after the resize and the input height, exact under the resize (the
        # official d_geo is 0.6 % larger on KITTI, where the 1280x384 input shows 372.6 of 375 rows)
        geo_depth_camera='original',
        # training (the official criterion): the depth loss writes sqrt(2) as 1.4142; the depth-map focal loss
        # adds 1e-6 to every class of its one-hot target (kornia's) and paints its boxes with Python slices, so
        # a box whose rounded corner is negative covers only the cells before its end counted from the far
        # side (usually none); default: sqrt(2), the true bin alone (the other 80 classes add about 1e-4 of
        # the loss), boxes clipped to the map
        loss_depth=dict(scale=1.4142),
        loss_depth_map=dict(one_hot_eps=1e-6, clip_boxes=False)),
    # training: the region targets are rasterised as the official dataset does (int() of the box sides in
    # edge coordinates); default: the pixels whose centre is inside a box
    region_head=dict(truncate_boxes=True),
    # training: the heading target is the observation angle of the ray through the 2D box centre, and the
    # focal match cost takes log(p + 1e-8); default: the ray through the 3D centre, which alpha_to_yaw
    # inverts exactly (the two rays differ by up to a few degrees), and mmdet's 1e-12
    train_cfg=dict(
        heading_ray='box_2d',
        assigner=dict(
            match_costs=[
                dict(type='mmdet.FocalLossCost', weight=2.0, eps=1e-8),
                dict(type='InstanceL1Cost', key='lrtb', weight=5.0),
                dict(type='mmdet.IoUCost', iou_mode='giou', weight=2.0),
                dict(type='InstanceL1Cost', key='centers_2d', weight=10.0),
            ])),
    test_cfg=dict(
        # official: boxes decoded as fractions of the original image without undoing the crop, the yaw
        # through the ray of the 2D box centre, sizes unclamped, the predicted alpha written;
        # default: the exact inverse of the test pipeline and the yaw through the 3D centre's ray
        official_decoding=True))

# official: PIL's bilinear affine warp to 1280x384 about the image centre; default: OpenCV's warp of the
# same transform, whose bilinear kernel differs by up to 10 grey levels
test_pipeline = [
    dict(type='LoadImageMono3D', backend_args=_base_.backend_args),
    dict(type='PILAffineResizeMono3D', out_size=_base_.input_size),
    dict(type='PackMono3DInputs', keys=['img']),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# official: the result rows hold every detection with its predicted alpha and unclipped 2D box, as the
# official tester writes them; default: alpha from the 3D box, 2D boxes clipped to the image
val_evaluator = dict(official_rows=True)
test_evaluator = val_evaluator

# training: the official KITTI dataset reads the label file's 2D boxes and P2's projections as coordinates
# from the image's edge (pixel centres at 0.5) and divides P2's projection of the 3D centre by z instead of
# z + t_z (its depth target is z); it trains the 3-class head on cars alone (writelist) and leaves out
# KITTI's 'UnKnown' level (box height + 1 < 25 px, truncation > 0.5 or occlusion > 2); its region target
# also paints the objects whose projected centre falls outside the image or their box; default: pixel
# centres at integers (KITTI's convention), the exact projection and depth of the centre, every chosen class
# and level, the region target of the objects trained on
load_pipeline = [
    dict(type='LoadImageMono3D', backend_args=_base_.backend_args),
    dict(type='LoadAnnotationsMono3D', official_centers=True, edge_coordinates=True),
]
train_pipeline = [
    *load_pipeline,
    *_base_.train_pipeline[2:4],
    dict(_base_.train_pipeline[4], load_pipeline=load_pipeline),
    _base_.train_pipeline[5],
    dict(_base_.train_pipeline[6], region_bboxes=True),
    _base_.train_pipeline[7],
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, ann_classes=['Car'], drop_unknown_level=True))
