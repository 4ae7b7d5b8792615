# FreeAnchor + PConv: 4 pyramid convs shared across levels replace the head's 4 stacked convs.
_base_ = ['./freeanchor_r50_fpn_1x_coco.py']

model = dict(
    neck=[
        {{_base_.fpn}},
        dict(type='SEPC', in_channels=256, num_levels=5, num_pconvs=4, pconv_deform=False,
             lcconv_deform=False, ibn=False)
    ],
    bbox_head=dict(type='SEPCFreeAnchorRetinaHead', stacked_convs=0))
train_dataloader = dict(batch_size=2)
