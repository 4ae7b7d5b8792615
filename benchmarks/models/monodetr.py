"""MonoDETR (configs/monodetr_kitti.py: ResNet-50, 1280x384, 256 channels, 50 x 11 queries) on the CPU, with
perception's deformable-attention kernel and with mmcv's pure-PyTorch ``multi_scale_deformable_attn_pytorch``
swapped into every deformable-attention layer (same weights).

    python benchmarks/models/monodetr.py [--repeat 3] [--threads 2] [--batch 2]

Inference: one image, the first query group (what ``tools/test.py`` runs). Training iteration: ``--batch``
images with three objects each, all 11 groups, loss + backward + AdamW step. Both are timed in alternation
(median of ``--repeat`` after one warm-up each) so that a change of load weighs on both alike. The raw
outputs of the two variants are compared first. The last line is
``monodetr speedup infer=<x> train=<y>`` (mmcv time / ours).
"""
import argparse
import copy
import logging
import statistics
import time
import warnings

import numpy as np
import torch
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch as mmcv_msda
from mmdet3d.structures import Det3DDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope

import perception.ops.msda as msda_module
from perception.ops import MultiScaleDeformableAttention
from perception.registry import MODELS
from perception.testing import mono3d_sample

CONFIG = 'configs/monodetr_kitti.py'
H, W = 384, 1280
# KITTI's P2 (frame 000008) scaled to the 1280 px wide input
CAM2IMG = np.array([[721.5377 * W / 1242, 0., 609.5593 * W / 1242, 0.],
                    [0., 721.5377 * H / 375, 172.854 * H / 375, 0.], [0., 0., 1., 0.], [0., 0., 0., 1.]])
OBJECTS = [[-3., 1.6, 12., 3.9, 1.5, 1.6, 0.3, 2], [2.5, 1.7, 22., 0.8, 1.7, 0.6, -1.2, 0],
           [6., 1.6, 35., 4.2, 1.6, 1.7, 1.5, 2]]


def make_sample() -> Det3DDataSample:
    return mono3d_sample(OBJECTS, (H, W), CAM2IMG)


def use_mmcv(model: torch.nn.Module) -> torch.nn.Module:
    """Every deformable-attention layer of ``model`` runs mmcv's pure-PyTorch function instead of the kernel."""
    for module in model.modules():
        if isinstance(module, MultiScaleDeformableAttention):
            module.use_kernel = False
    return model


def mmcv_reference(value, spatial_shapes, level_start_index, sampling_locations, attention_weights):
    return mmcv_msda(value, spatial_shapes, sampling_locations, attention_weights)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=2, help='images per training iteration')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # the layers' reference path (use_kernel=False) becomes mmcv's function
    msda_module.multi_scale_deformable_attn_pytorch = mmcv_reference

    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = None  # random weights: no ImageNet file needed
    init_default_scope(cfg.default_scope)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ours = MODELS.build(cfg.model)
    logging.getLogger('mmengine').setLevel(logging.WARNING)  # no per-parameter init report
    ours.init_weights()
    models = {'ours': ours, 'mmcv': use_mmcv(copy.deepcopy(ours))}

    image = torch.randn(1, 3, H, W, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outs = {name: m.eval()({'imgs': image}, [make_sample()], mode='tensor') for name, m in models.items()}
    diffs = {k: (outs['ours'][k] - outs['mmcv'][k]).abs().max().item() for k in outs['ours']
             if torch.is_tensor(outs['ours'][k])}
    worst = max(diffs, key=diffs.get)
    print(f'outputs ours vs mmcv: max |diff| {diffs[worst]:.2e} (in {worst}) over {len(diffs)} output tensors')
    assert diffs[worst] < 1e-3, diffs

    infer = {name: [] for name in models}
    for it in range(args.repeat + 1):
        for name, model in models.items():
            model.eval()
            with torch.no_grad():
                t0 = time.perf_counter()
                model.predict({'imgs': image}, [make_sample()])
                if it:
                    infer[name].append(time.perf_counter() - t0)

    images = torch.randn(args.batch, 3, H, W, generator=torch.Generator().manual_seed(1))
    optims = {name: torch.optim.AdamW(m.parameters(), lr=2e-4, weight_decay=1e-4) for name, m in models.items()}
    train = {name: [] for name in models}
    for it in range(args.repeat + 1):
        for name, model in models.items():
            model.train()
            t0 = time.perf_counter()
            losses = model.loss({'imgs': images}, [make_sample() for _ in range(args.batch)])
            loss = sum(v for v in losses.values() if torch.is_tensor(v))
            loss.backward()
            optims[name].step()
            optims[name].zero_grad()
            if it:
                train[name].append(time.perf_counter() - t0)

    print(f'torch {torch.__version__}, {args.threads} threads, {H}x{W}, median of {args.repeat}')
    print(f"{'variant':<8} {'inference s':>12} {'train iter s':>13}  (batch {args.batch})")
    med = {name: (statistics.median(infer[name]), statistics.median(train[name])) for name in models}
    for name in ('mmcv', 'ours'):
        print(f'{name:<8} {med[name][0]:>12.2f} {med[name][1]:>13.2f}')
    print(f"monodetr speedup infer={med['mmcv'][0] / med['ours'][0]:.2f} "
          f"train={med['mmcv'][1] / med['ours'][1]:.2f}")


if __name__ == '__main__':
    main()
