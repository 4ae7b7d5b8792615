# The StreamPETR baseline on the synthetic nuScenes world: open_r18_tiny_synthnuscenes.py with the object-wise
# parts switched off, as streampetr_r50_704x256_90e_nuscenes.py does for the official model.
_base_ = ['./open_r18_tiny_synthnuscenes.py']

model = dict(
    img_roi_head=None,
    pts_bbox_head=dict(
        position_embedding=dict(_delete_=True, type='FrustumPositionEmbedding', num_depths=64, depth_start=1.0,
                                position_range={{_base_.position_range}}),
        loss_cls=dict(_delete_=True, type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=2.0),
        soft_targets=False,
        query_inverse_sigmoid=False))
