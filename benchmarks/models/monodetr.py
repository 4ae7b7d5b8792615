"""MonoDETR's training iteration and inference on the CPU against the backbone-only floor of the same run, for the
official config (configs/monodetr_kitti.py: ResNet-50, 1280x384, 256 channels, 50 x 11 queries, dropout 0.1)
and the CPU config of the main job (configs/monodetr/monodetr_r18_main-job_synthkitti-mono3d.py: ResNet-18, 384x112,
25 queries per group; it trains in bfloat16, timed with ``--amp``).

    python benchmarks/models/monodetr.py [--repeat 3] [--threads 2] [--batch 2] [--profile] [--mmcv] [--flops] [--amp]

Inference: one image, the first query group (what ``tools/test.py`` runs); its floor is the backbone's forward.
Training iteration: ``--batch`` images with three objects each, all query groups, loss + backward + the config's
optimiser step;
its floor is the backbone's forward + backward on the same images. Model and floor are timed in alternation
(median of ``--repeat`` after one warm-up) so that the load of a shared machine weighs on both alike: compare
the ratios, not the seconds. ``--profile`` prints the top-10 self-CPU operators of one training iteration of
the official config; ``--mmcv`` first checks and times perception's deformable-attention kernel against mmcv's
pure-PyTorch ``multi_scale_deformable_attn_pytorch`` in every deformable-attention layer (same weights);
``--flops`` first prints each config's FLOPs against the backbone's (see :func:`count_flops`); ``--amp`` also
times both training runs under bfloat16 autocast (``tools/train.py --amp``) against float32.
The last line is ``monodetr step/backbone train=<x> infer=<y>``, the official config's ratios.
"""
import argparse
import copy
import logging
import statistics
import time
import warnings
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch as mmcv_msda
from mmdet3d.structures import Det3DDataSample
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

import perception.ops.msda as msda_module
from perception.ops import MultiScaleDeformableAttention, use_philox_dropout
from perception.registry import MODELS
from perception.testing import mono3d_sample

CONFIGS = ('configs/monodetr_kitti.py', 'configs/monodetr/monodetr_r18_main-job_synthkitti-mono3d.py')
# KITTI's P2 (frame 000008), scaled to the input size
KITTI_SIZE, KITTI_F, KITTI_C = (375, 1242), 721.5377, (609.5593, 172.854)
OBJECTS = [[-3., 1.6, 12., 3.9, 1.5, 1.6, 0.3, 2], [2.5, 1.7, 22., 0.8, 1.7, 0.6, -1.2, 0],
           [6., 1.6, 35., 4.2, 1.6, 1.7, 1.5, 2]]


def make_sample(size: Sequence[int]) -> Det3DDataSample:
    """Three objects seen by KITTI's camera scaled to ``size`` (H, W)."""
    sy, sx = size[0] / KITTI_SIZE[0], size[1] / KITTI_SIZE[1]
    cam2img = np.array([[KITTI_F * sx, 0., KITTI_C[0] * sx, 0.], [0., KITTI_F * sy, KITTI_C[1] * sy, 0.],
                        [0., 0., 1., 0.], [0., 0., 0., 1.]])
    return mono3d_sample(OBJECTS, tuple(size), cam2img)


def build(config: str) -> tuple:
    """The model of ``config`` with random weights (no ImageNet file), its optimiser as ``tools/train.py`` builds
    it (the config's ``optim_wrapper``: parameter groups, AdamW options) and its input size (H, W)."""
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.default_scope)
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # no per-parameter init report
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
        model.init_weights()
        use_philox_dropout(model)  # as perception's Runner does
        logger = MMLogger.get_current_instance()
        logger.setLevel(logging.ERROR)  # no report of each frozen or decay-free parameter
        optim = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
        logger.setLevel(logging.WARNING)
    return model, optim, (cfg.input_size[1], cfg.input_size[0])


def train_step(model: nn.Module, optim: torch.optim.Optimizer, images: torch.Tensor, bf16: bool = False) -> None:
    """One training iteration; ``bf16``: the forward and the losses under ``torch.autocast('cpu', bfloat16)``, as
    ``tools/train.py --amp`` trains on the CPU (the samples come from the data loader, outside it)."""
    model.train()
    samples = [make_sample(images.shape[-2:]) for _ in range(len(images))]
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        losses = model.loss({'imgs': images}, samples)
    sum(v for v in losses.values() if torch.is_tensor(v)).backward()
    optim.step()
    optim.zero_grad()


def backbone_train(model: nn.Module, images: torch.Tensor, bf16: bool = False) -> None:
    model.train()
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        feats = model.backbone(images)
    sum(feat.float().mean() for feat in feats).backward()
    model.zero_grad()


def infer(model: nn.Module, image: torch.Tensor) -> None:
    model.eval()
    with torch.no_grad():
        model.predict({'imgs': image}, [make_sample(image.shape[-2:])])


def backbone_infer(model: nn.Module, image: torch.Tensor) -> None:
    model.eval()
    with torch.no_grad():
        model.backbone(image)


def alternate(runs: Dict[str, Callable[[], None]], repeat: int) -> Dict[str, float]:
    """Median seconds of each run, the runs taken in turn, after one warm-up each."""
    times: Dict[str, List[float]] = {name: [] for name in runs}
    for it in range(repeat + 1):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            if it:
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def timed_runs(config: str, batch: int) -> Tuple[Dict[str, Callable[[], None]], Tuple[int, int]]:
    """The measured runs of ``config`` on one model with random weights, ``train`` (``batch`` images),
    ``backbone_train``, ``infer`` (one image), ``backbone_infer`` and the two training runs in bfloat16
    (``train_bf16``, ``backbone_train_bf16``), and the input size (H, W)."""
    torch.manual_seed(0)
    model, optim, size = build(config)
    image = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    images = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(1))
    runs = dict(train=lambda: train_step(model, optim, images), backbone_train=lambda: backbone_train(model, images),
                infer=lambda: infer(model, image), backbone_infer=lambda: backbone_infer(model, image))
    runs.update(train_bf16=lambda: train_step(model, optim, images, bf16=True),
                backbone_train_bf16=lambda: backbone_train(model, images, bf16=True))
    return runs, size


def step_and_floor(config: str, repeat: int, batch: int, amp: bool = False) -> Dict[str, float]:
    """Seconds of the training iteration, the inference and their backbone floors (``train``, ``infer``,
    ``backbone_train``, ``backbone_infer``); with ``amp`` also the training runs in bfloat16, timed in
    alternation with the float32 ones (``train_bf16``, ``backbone_train_bf16``)."""
    runs, size = timed_runs(config, batch)
    times = alternate({name: runs[name] for name in ('infer', 'backbone_infer')}, repeat)
    trains = ('train', 'backbone_train') + (('train_bf16', 'backbone_train_bf16') if amp else ())
    times.update(alternate({name: runs[name] for name in trains}, repeat))
    print(f'{config} ({size[1]}x{size[0]}, batch {batch}): train {times["train"]:.2f} s, backbone fwd+bwd '
          f'{times["backbone_train"]:.2f} s; infer {times["infer"]:.3f} s, backbone fwd '
          f'{times["backbone_infer"]:.3f} s', flush=True)
    if amp:
        print(f'  bfloat16 autocast: train {times["train_bf16"]:.2f} s, backbone fwd+bwd '
              f'{times["backbone_train_bf16"]:.2f} s; speedup over float32 '
              f'train={times["train"] / times["train_bf16"]:.2f} '
              f'backbone={times["backbone_train"] / times["backbone_train_bf16"]:.2f}', flush=True)
    return times


class _FlopCount(TorchDispatchMode):
    """FLOPs of the operators with a formula in ``torch.utils.flop_counter`` (its ``FlopCounterMode`` also
    tracks modules, with gradient hooks that fail on tensors made under ``no_grad``)."""

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        return out


def count_flops(config: str, batch: int) -> Dict[str, float]:
    """GFLOPs (``torch.utils.flop_counter``: matrix products, convolutions, fused attention) of the training
    iteration, the inference and their backbone floors. The deformable sampling and the element-wise operators
    are not counted, so ``train / backbone_train`` is the ratio the step would have if every operator ran at
    the backbone's FLOP rate and the uncounted ones were free: the floor of the timed ratio."""
    runs, _ = timed_runs(config, batch)
    flops = {}
    for name in ('train', 'backbone_train', 'infer', 'backbone_infer'):
        fn = runs[name]
        with _FlopCount() as counter:
            fn()
        flops[name] = counter.flops / 1e9
    print(f'{config}: GFLOPs train {flops["train"]:.1f} (backbone fwd+bwd {flops["backbone_train"]:.1f}), '
          f'infer {flops["infer"]:.1f} (backbone fwd {flops["backbone_infer"]:.1f}); FLOP ratio '
          f'train={flops["train"] / flops["backbone_train"]:.2f} infer={flops["infer"] / flops["backbone_infer"]:.2f}',
          flush=True)
    return flops


def profile_train_step(config: str, batch: int, rows: int = 10) -> None:
    """Top ``rows`` self-CPU operators of one training iteration of ``config`` (after one warm-up)."""
    torch.manual_seed(0)
    model, optim, size = build(config)
    images = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(1))
    train_step(model, optim, images)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        train_step(model, optim, images)
    print(f'{config}: top {rows} self-CPU operators of one training iteration (batch {batch})')
    print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=rows))


def compare_mmcv(config: str, repeat: int, batch: int) -> None:
    """Outputs and times of perception's deformable-attention kernel against mmcv's pure-PyTorch function."""

    def mmcv_reference(value, spatial_shapes, level_start_index, sampling_locations, attention_weights):
        return mmcv_msda(value, spatial_shapes, sampling_locations, attention_weights)

    # the layers' reference path (use_kernel=False) becomes mmcv's function
    msda_module.multi_scale_deformable_attn_pytorch = mmcv_reference
    torch.manual_seed(0)
    ours, _, size = build(config)
    theirs = copy.deepcopy(ours)
    for module in theirs.modules():
        if isinstance(module, MultiScaleDeformableAttention):
            module.use_kernel = False
    models = dict(ours=ours, mmcv=theirs)
    image = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outs = {name: m.eval()({'imgs': image}, [make_sample(size)], mode='tensor') for name, m in models.items()}
    diffs = {k: (outs['ours'][k] - outs['mmcv'][k]).abs().max().item() for k in outs['ours']
             if torch.is_tensor(outs['ours'][k])}
    worst = max(diffs, key=diffs.get)
    print(f'outputs ours vs mmcv: max |diff| {diffs[worst]:.2e} (in {worst}) over {len(diffs)} output tensors')
    assert diffs[worst] < 1e-3, diffs
    images = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(1))
    optims = {name: torch.optim.AdamW(m.parameters(), lr=2e-4, weight_decay=1e-4) for name, m in models.items()}
    inf = alternate({name: (lambda m=m: infer(m, image)) for name, m in models.items()}, repeat)
    train = alternate({name: (lambda m=m: train_step(m, optims[name], images)) for name, m in models.items()},
                      repeat)
    print(f"{'variant':<8} {'inference s':>12} {'train iter s':>13}")
    for name in ('mmcv', 'ours'):
        print(f'{name:<8} {inf[name]:>12.2f} {train[name]:>13.2f}')
    print(f"msda speedup infer={inf['mmcv'] / inf['ours']:.2f} train={train['mmcv'] / train['ours']:.2f}")


def run(name: str, configs: Sequence[str], description: str) -> None:
    """The command line shared by the MonoDETR and MonoDGP benchmarks."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--repeat', type=int, default=3, help='0: no timing (only --profile, --mmcv, --flops)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=2, help='images per training iteration')
    parser.add_argument('--configs', nargs='+', default=list(configs), help='the first gives the last line')
    parser.add_argument('--profile', action='store_true', help="top-10 operators of the first config's step")
    parser.add_argument('--mmcv', action='store_true', help="deformable attention vs mmcv's, first config")
    parser.add_argument('--flops', action='store_true', help='FLOP ratios of every config (the floor of the timed)')
    parser.add_argument('--amp', action='store_true', help='also the training runs in bfloat16 (tools/train.py --amp)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}, {args.threads} threads, median of {args.repeat}', flush=True)
    if args.mmcv:
        compare_mmcv(args.configs[0], args.repeat, args.batch)
    if args.profile:
        profile_train_step(args.configs[0], args.batch)
    if args.flops:
        for config in args.configs:
            count_flops(config, args.batch)
    if args.repeat == 0:
        return
    ratios = []
    for config in args.configs:
        t = step_and_floor(config, args.repeat, args.batch, args.amp)
        ratios.append((t['train'] / t['backbone_train'], t['infer'] / t['backbone_infer']))
        print(f'  {name} step/backbone train={ratios[-1][0]:.2f} infer={ratios[-1][1]:.2f} ({config})', flush=True)
    print(f'{name} step/backbone train={ratios[0][0]:.2f} infer={ratios[0][1]:.2f}')


if __name__ == '__main__':
    run('monodetr', CONFIGS, __doc__.split('\n')[0])
