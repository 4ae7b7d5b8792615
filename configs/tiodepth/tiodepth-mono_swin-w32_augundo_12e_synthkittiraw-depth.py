# AugUndo (ECCV 2024) around the monocular stage of TiO-Depth (tiodepth-mono_swin-w32_12e_synthkittiraw-depth.py,
# same schedule): the network sees the pair rotated, cropped-and-padded, resized-and-padded or -cropped and
# colour-jittered; its logits are warped back, and the photometric loss runs on the original images, masked
# where the undone logits came from padding. The release's ranges for depth estimation on KITTI.
_base_ = ['./tiodepth-mono_swin-w32_12e_synthkittiraw-depth.py']

model = dict(
    _delete_=True,
    type='AugUndo',
    model={{_base_.model}},
    image_keys=('imgs', ),
    intrinsics_key=None,  # TiO-Depth reads fx from the metainfo; disparity bins are frame pixels
    undo_keys=('mono_logits', ),
    geometric=[
        dict(type='Rotate', max_angle=10., prob=0.5),
        dict(type='CropAndPad', scale=(0.9, 1.0), prob=0.5),
        dict(type='ResizeAndPad', scale=(0.8, 1.0), prob=0.3),
        dict(type='ResizeAndCrop', scale=(1.0, 1.1), prob=0.3),
    ],
    photometric=[
        dict(type='Brightness', factor=(0.8, 1.2)),
        dict(type='Contrast', factor=(0.8, 1.2)),
        dict(type='Saturation', factor=(0.8, 1.2)),
    ])
