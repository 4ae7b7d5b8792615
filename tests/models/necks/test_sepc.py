import copy

import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from perception.models.necks.sepc import SEPC, PConv, SEPCConv, integrated_bn
from perception.registry import MODELS

# Batch 2, five levels from 32 to 2 pixels, as P3-P7 of a 256-pixel image.
SIZES = [32, 16, 8, 4, 2]


def pyramid(channels=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, channels, s, s, generator=g) for s in SIZES]


def randomize(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return module


def test_pconv_equals_naive_per_level_loop():
    feats = pyramid()
    pconv = randomize(PConv(4)).eval()
    w0, w1, w2 = pconv.conv_up, pconv.conv_same, pconv.conv_down
    expected = []
    for level in range(len(feats)):
        y = F.conv2d(feats[level], w1.weight, w1.bias, padding=1)
        if level > 0:  # the finer level below, read with stride 2
            y = y + F.conv2d(feats[level - 1], w2.weight, w2.bias, stride=2, padding=1)
        if level < len(feats) - 1:  # the coarser level above, upsampled
            up = F.conv2d(feats[level + 1], w0.weight, w0.bias, padding=1)
            y = y + F.interpolate(up, size=y.shape[-2:], mode='bilinear', align_corners=True)
        expected.append(y.clamp(min=0))
    for out, ref in zip(pconv(feats), expected):
        torch.testing.assert_close(out, ref)


def test_pconv_drops_the_terms_outside_the_pyramid():
    feats = pyramid()
    # The bottom level has no finer level below it: the stride-2 kernel must not reach it.
    pconv = randomize(PConv(4)).eval()
    base = pconv(feats)
    with torch.no_grad():
        pconv.conv_down.weight.add_(1.0)
    changed = pconv(feats)
    torch.testing.assert_close(changed[0], base[0])
    assert not torch.allclose(changed[1], base[1])
    # The top level has no coarser level above it: the upsampled kernel must not reach it.
    pconv = randomize(PConv(4)).eval()
    base = pconv(feats)
    with torch.no_grad():
        pconv.conv_up.weight.add_(1.0)
    changed = pconv(feats)
    torch.testing.assert_close(changed[-1], base[-1])
    assert not torch.allclose(changed[-2], base[-2])


def test_integrated_bn_uses_statistics_over_all_levels():
    feats = pyramid(channels=3)
    bn = torch.nn.BatchNorm2d(3, momentum=1.0)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        bn.bias.copy_(torch.tensor([0.0, -1.0, 3.0]))
    outs = integrated_bn(feats, bn.train())

    values = torch.cat([f.permute(1, 0, 2, 3).reshape(3, -1) for f in feats], dim=1)  # C, N * sum(HW)
    mean, var = values.mean(1), values.var(1, unbiased=False)
    for f, out in zip(feats, outs):
        ref = (f - mean.view(1, 3, 1, 1)) / torch.sqrt(var.view(1, 3, 1, 1) + bn.eps)
        ref = ref * bn.weight.view(1, 3, 1, 1) + bn.bias.view(1, 3, 1, 1)
        torch.testing.assert_close(out, ref.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_mean, mean)
    torch.testing.assert_close(bn.running_var, values.var(1, unbiased=True))
    # One level normalised alone would use other statistics.
    alone = F.batch_norm(feats[0], None, None, bn.weight, bn.bias, training=True)
    assert not torch.allclose(alone, outs[0].detach(), atol=1e-3)


@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('size', [(9, 11), (2, 3), (1, 2)])  # top levels of small images are tiny
def test_scale_equalizing_conv_with_zero_offsets_equals_plain_conv(stride, size):
    x = torch.randn(2, 4, *size)
    conv = SEPCConv(4, 6, stride=stride, deform=True)
    with torch.no_grad():
        conv.bias.normal_()
    plain = F.conv2d(x, conv.weight, conv.bias, stride=stride, padding=1)
    assert torch.count_nonzero(conv.conv_offset(x)) == 0
    for level in (0, 1, 3):
        torch.testing.assert_close(conv(x, level), plain, rtol=1e-5, atol=1e-6)


def test_scale_equalizing_conv_deforms_only_above_the_first_level():
    x = torch.randn(1, 4, 8, 10)
    conv = SEPCConv(4, 4, deform=True)
    with torch.no_grad():
        # Offsets are (dy, dx) per kernel tap: dx = 1 everywhere samples one pixel to the right.
        conv.conv_offset.bias.view(9, 2)[:, 1] = 1.0
    plain = F.conv2d(x, conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(conv(x, 0), plain)
    torch.testing.assert_close(conv(x, 1)[..., :-1], plain[..., 1:], rtol=1e-5, atol=1e-6)


def test_sepc_equals_pconv_at_initialisation():
    feats = pyramid(channels=8)
    plain = SEPC(8, pconv_deform=False, lcconv_deform=False, ibn=True)
    full = SEPC(8, pconv_deform=True, lcconv_deform=True, ibn=True)
    missing, unexpected = full.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all('conv_offset' in k for k in missing)
    for (c0, l0), (c1, l1) in zip(plain(feats), full(feats)):
        # iBN divides by the small spread of N(0, 0.01)-initialised outputs, which magnifies rounding.
        torch.testing.assert_close(c1, c0, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(l1, l0, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('config',
                         ['retinanet_r50_fpn_sepc_1x_coco.py', 'freeanchor_r50_fpn_sepc_1x_coco.py'])
def test_sepc_detector_train_step(config):
    cfg = Config.fromfile(f'configs/sepc/{config}')
    init_default_scope(cfg.default_scope)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.update(depth=18, init_cfg=None)
    model_cfg.neck[0].update(in_channels=[64, 128, 256, 512], out_channels=16)
    model_cfg.neck[1].update(in_channels=16)
    model_cfg.bbox_head.update(num_classes=3, in_channels=16, feat_channels=16)
    model = MODELS.build(model_cfg)
    model.init_weights()
    samples = []
    for i in range(2):
        s = DetDataSample(metainfo=dict(img_shape=(64, 96), pad_shape=(64, 96), batch_input_shape=(64, 96),
                                        scale_factor=(1.0, 1.0), ori_shape=(64, 96)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[10., 8., 40., 50.]]) + i,
                                      labels=torch.tensor([i]))
        samples.append(s)
    losses = model.loss(torch.randn(2, 3, 64, 96), samples)
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(x.sum() for x in v) for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    sepc = model.neck[1]
    assert sepc.pconvs[0].conv_same.weight.grad is not None
    # The offsets start at zero but learn: the scale-equalizing convs receive gradients.
    assert sepc.pconvs[0].conv_same.conv_offset.weight.grad.abs().sum() > 0
