# RetinaNet + SEPC: scale-equalizing kernels in the pyramid convs and the cls/loc convs, iBN.
_base_ = ['./retinanet_r50_fpn_1x_coco.py']

model = dict(
    neck=[
        {{_base_.fpn}},
        dict(type='SEPC', in_channels=256, num_levels=5, num_pconvs=4, pconv_deform=True,
             lcconv_deform=True, ibn=True)
    ],
    bbox_head=dict(type='SEPCRetinaHead', stacked_convs=0))
train_dataloader = dict(batch_size=4)
