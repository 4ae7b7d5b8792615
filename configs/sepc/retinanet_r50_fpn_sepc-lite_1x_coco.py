# RetinaNet + SEPC-lite: iBN + PConv + scale-equalizing (deformable above P3) cls/loc convs.
_base_ = ['./retinanet_r50_fpn_1x_coco.py']

model = dict(
    neck=[
        {{_base_.fpn}},
        dict(type='SEPC', in_channels=256, num_levels=5, num_pconvs=4, pconv_deform=False,
             lcconv_deform=True, ibn=True)
    ],
    bbox_head=dict(type='SEPCRetinaHead', stacked_convs=0))
train_dataloader = dict(batch_size=4)
