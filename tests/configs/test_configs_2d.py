"""Every 2D detection config builds; the CPU-sized one of each detector overfits two images."""
from pathlib import Path

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from perception.registry import MODELS

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs'
CONFIGS = sorted(str(p.relative_to(CONFIG_DIR)) for d in ('ssd', 'sepc', 'stage_interactor')
                 for p in (CONFIG_DIR / d).glob('*.py'))


def load(name):
    cfg = Config.fromfile(CONFIG_DIR / name)
    init_default_scope(cfg.default_scope)
    return cfg


def test_all_method_configs_are_listed():
    assert len(CONFIGS) >= 3 + 8 + 1
    for name in ('ssd/ssd300_vgg16_120e_coco.py', 'ssd/ssd512_vgg16_120e_coco.py', 'ssd/ssd300_vgg16_240e_voc0712.py',
                 'stage_interactor/stageinteractor_r50_1x_coco.py'):
        assert name in CONFIGS
    for det in ('retinanet', 'freeanchor'):
        for variant in ('pconv', 'ibn-pconv', 'sepc-lite', 'sepc'):
            assert f'sepc/{det}_r50_fpn_{variant}_1x_coco.py' in CONFIGS


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name):
    cfg = load(name)
    assert cfg.default_scope == 'perception'
    model = MODELS.build(cfg.model)  # builds only: no weights are initialised or downloaded
    assert sum(p.numel() for p in model.parameters()) > 0
    for key in ('train_dataloader', 'val_dataloader', 'test_evaluator', 'optim_wrapper', 'param_scheduler'):
        assert key in cfg, key


def test_sepc_variant_flags():
    flags = {
        'pconv': (False, False, False),
        'ibn-pconv': (False, False, True),
        'sepc-lite': (False, True, True),
        'sepc': (True, True, True),
    }
    for det in ('retinanet', 'freeanchor'):
        for variant, expected in flags.items():
            cfg = load(f'sepc/{det}_r50_fpn_{variant}_1x_coco.py')
            sepc = cfg.model.neck[1]
            assert (sepc.pconv_deform, sepc.lcconv_deform, sepc.ibn) == expected
            assert cfg.model.bbox_head.stacked_convs == 0
            assert cfg.train_dataloader.batch_size == (4 if expected[2] else 2)


def two_images(height, width):
    """Two images with bright boxes on a dark background, and their ground truth."""
    g = torch.Generator().manual_seed(0)
    boxes = [torch.tensor([[0.1, 0.2, 0.4, 0.9], [0.6, 0.3, 0.9, 0.8]]),
             torch.tensor([[0.3, 0.1, 0.7, 0.6]])]
    labels = [torch.tensor([0, 2]), torch.tensor([1])]
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    images, samples = [], []
    for b, lab in zip(boxes, labels):
        image = torch.rand(3, height, width, generator=g) * 40
        b = b * scale
        for (x1, y1, x2, y2), c in zip(b.round().long().tolist(), lab.tolist()):
            image[c, y1:y2, x1:x2] = 220
        images.append(image)
        s = DetDataSample(
            metainfo=dict(img_shape=(height, width), ori_shape=(height, width), scale_factor=(1., 1.)))
        s.gt_instances = InstanceData(bboxes=b, labels=lab)
        samples.append(s)
    return images, samples


def total_loss(losses, keys=('loss', )):
    return sum(v.sum() if isinstance(v, torch.Tensor) else sum(x.sum() for x in v)
               for k, v in losses.items() if any(key in k for key in keys))


# Tiny widths and inputs so that each overfit stays well under a minute on 2 shared cores.
TINY_R18 = {'model.backbone.base_channels': 16}
OVERFIT = {
    # config: (input height, width, iterations, AdamW learning rate, config overrides, losses watched)
    'ssd/ssdlite320_mobilenetv2_5e_synthcoco.py': (320, 320, 30, 3e-3, {
        'model.backbone.widen_factor': 0.25,
        'model.neck.in_channels': (24, 1280),
        'model.neck.out_channels': (24, 1280, 128, 64, 64, 32),
        'model.bbox_head.in_channels': (24, 1280, 128, 64, 64, 32)
    }, ('loss', )),
    'sepc/retinanet_r18_fpn_sepc-lite_2e_synthcoco.py': (64, 128, 30, 3e-3, {
        **TINY_R18,
        'model.neck': [
            dict(type='mmdet.FPN', in_channels=[16, 32, 64, 128], out_channels=16, start_level=1,
                 add_extra_convs='on_input', num_outs=5),
            dict(type='SEPC', in_channels=16, lcconv_deform=True, ibn=True)
        ],
        'model.bbox_head.in_channels': 16,
        'model.bbox_head.feat_channels': 16
    }, ('loss', )),
    # The cross-stage assigner gives class targets only to boxes with IoU >= 0.5, so the class loss
    # first rises as boxes improve: watch the box losses.
    'stage_interactor/stageinteractor_r18_2e_synthcoco.py': (64, 128, 40, 1e-3, {
        **TINY_R18,
        'model.neck.in_channels': [16, 32, 64, 128],
        'model.neck.out_channels': 32,
        'model.bbox_head.dim': 32,
        'model.bbox_head.num_heads': 4,
        'model.bbox_head.ffn_channels': 64,
        'model.bbox_head.out_points': 16,
        'model.bbox_head.num_queries': 10
    }, ('loss_bbox', 'loss_iou')),
}


@pytest.fixture
def one_thread():
    # Tiny tensors: OpenMP threads only wait on each other on a shared 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(OVERFIT))
def test_two_image_overfit(name, one_thread):
    torch.manual_seed(0)
    height, width, iters, lr, overrides, keys = OVERFIT[name]
    cfg = load(name)
    cfg.merge_from_dict(overrides)
    model = MODELS.build(cfg.model)
    model.init_weights()
    images, samples = two_images(height, width)
    data = model.data_preprocessor(dict(inputs=images, data_samples=samples), training=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0)
    model.train()
    history = []
    for _ in range(iters):
        losses = model.loss(data['inputs'], data['data_samples'])
        optimizer.zero_grad()
        total_loss(losses).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        history.append(total_loss(losses, keys).item())
    first, last = sum(history[:3]) / 3, sum(history[-3:]) / 3
    assert last < 0.5 * first, history
    model.eval()
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    assert all(r.pred_instances.bboxes.shape[-1] == 4 for r in results)
