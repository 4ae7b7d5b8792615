# The StreamPETR baseline of OPEN: the same detector and schedule with the object-wise parts switched off (no
# depth net, object-wise depth encoder or 2D object branch; PETR's camera-frustum position embedding with 64
# depths instead of the object-wise one; hard classification targets instead of OPEN's localisation score).
# The LiDAR points still load (the pipeline is shared) but nothing reads them.
_base_ = ['./open_r50_704x256_90e_nuscenes.py']

model = dict(
    img_roi_head=None,
    pts_bbox_head=dict(
        position_embedding=dict(_delete_=True, type='FrustumPositionEmbedding', num_depths=64, depth_start=1.0,
                                position_range={{_base_.position_range}}),
        loss_cls=dict(_delete_=True, type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=2.0),
        soft_targets=False,
        query_inverse_sigmoid=False))
