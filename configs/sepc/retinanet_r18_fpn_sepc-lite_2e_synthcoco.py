# CPU-sized RetinaNet + SEPC-lite on the synthetic world; same backbone, data and schedule as
# retinanet_r18_fpn_2e_synthcoco.py (4 images per batch, as iBN wants).
_base_ = ['./retinanet_r18_fpn_2e_synthcoco.py']

model = dict(
    neck=[
        {{_base_.fpn}},
        dict(type='SEPC', in_channels=64, num_levels=5, num_pconvs=4, pconv_deform=False,
             lcconv_deform=True, ibn=True)
    ],
    bbox_head=dict(type='SEPCRetinaHead', stacked_convs=0))
