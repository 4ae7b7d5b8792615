"""DepthMaster (issue 19): targets, the Fourier block, both Hubers, the feature-alignment KL, the official folder
layout, the per-frame video path and a two-image overfit of a tiny random model."""
import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import BaseDataElement

from perception.models.depth.depthmaster import (FourierEnhancementBlock, feature_alignment_kl, gradient_huber_loss,
                                                 huber, latent_valid_mask, sqrt_disparity_target)
from perception.registry import MODELS

import diffusers  # noqa: F401  isort: skip

ROOT = Path(__file__).parents[3]
TINY_STAGE1 = str(ROOT / 'configs/depthmaster/depthmaster_tiny-stage1_synthkittiraw.py')
TINY_STAGE2 = str(ROOT / 'configs/depthmaster/depthmaster_tiny-stage2_synthkittiraw.py')
CONVERTER = ROOT / 'tools/model_converters/depthmaster_to_perception.py'


def tiny_cfg(path: str = TINY_STAGE1, **overrides) -> dict:
    cfg = copy.deepcopy(Config.fromfile(path).model)
    cfg.pop('data_preprocessor')
    cfg.update(overrides)
    return cfg


def test_sqrt_disparity_target_by_hand():
    # sqrt(1 / depth) = 1, 1/2, 1/3, 1/4, 1/5 on the valid pixels; the last pixel has no depth.
    depth = torch.tensor([[[1., 4., 9., 16., 25., 0.]]])
    valid = depth > 0
    values = np.array([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    low, high = np.quantile(values, [0.02, 0.98])  # linear interpolation, as torch.quantile
    expected = np.clip((values - low) / (high - low) * 2 - 1, -1, 1)
    out = sqrt_disparity_target(depth, valid)
    np.testing.assert_allclose(out[0, 0, :5].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert out[0, 0, 5] == -1
    # By hand: the 2 % quantile of 5 sorted values is 1/5 + 0.08 (1/4 - 1/5), the 98 % one 1 - 0.08 (1 - 1/2).
    assert low == pytest.approx(0.2 + 0.08 * 0.05) and high == pytest.approx(1 - 0.08 * 0.5)
    assert out[0, 0, 0] == 1 and out[0, 0, 4] == -1  # beyond the quantiles: clipped
    with pytest.raises(ValueError, match='no valid depth'):
        sqrt_disparity_target(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.bool))


def test_latent_mask_needs_every_pixel_of_a_cell():
    valid = torch.ones(1, 16, 16, dtype=torch.bool)
    valid[0, 3, 12] = False
    assert latent_valid_mask(valid)[0].tolist() == [[True, False], [True, True]]


def test_fourier_block_shape_and_ortho_round_trip(monkeypatch):
    torch.manual_seed(0)
    block = FourierEnhancementBlock(channels=8, groups=8)
    x = torch.randn(2, 8, 5, 7)  # odd width: irfft2 needs the output size
    assert block(x).shape == x.shape
    # With identity 3x3 convolutions and SiLU replaced by the identity, the frequency branch is
    # irfft2(|X| e^{i angle X}) + x with X = rfft2(x): the 'ortho' round trip gives x back, so 2 x in all.
    identity = torch.zeros(8, 8, 3, 3)
    identity[range(8), range(8), 1, 1] = 1
    with torch.no_grad():
        for conv in (block.conv_f1, block.conv_f2, block.conv_f4):
            conv.weight.copy_(identity)
            conv.bias.zero_()
    monkeypatch.setattr(F, 'silu', lambda t: t)
    x_f = block.frequency(x)
    torch.testing.assert_close(x_f, 2 * x, rtol=1e-5, atol=1e-5)  # irfft2(rfft2(x)) + x
    # and the unnormalised transform would not give x back: 'ortho' is what makes it a round trip
    spectrum = torch.fft.rfft2(x)
    assert not torch.allclose(torch.fft.irfft2(spectrum, s=x.shape[-2:], norm='ortho'), x, atol=1e-3)


def test_both_hubers_by_hand():
    delta = 0.2
    error = torch.tensor([0.1, -0.1, 0.5, -1.0])
    standard = [0.5 * 0.01, 0.5 * 0.01, 0.2 * (0.5 - 0.1), 0.2 * (1.0 - 0.1)]
    official = [0.2 * 0.1 + 0.5 * 0.04, 0.2 * 0.1 + 0.5 * 0.04, 0.5 * 0.25, 0.5 * 1.0]
    torch.testing.assert_close(huber(error, delta, 'standard'), torch.tensor(standard))
    torch.testing.assert_close(huber(error, delta, 'official'), torch.tensor(official))
    with pytest.raises(ValueError, match='huber mode'):
        huber(error, delta, 'smooth')


def test_gradient_huber_loss_by_hand():
    # A 2x2 target and a zero prediction: each direction has one difference.
    target = torch.tensor([[[[0., 1.], [2., 4.]]]])
    pred = torch.zeros_like(target)
    valid = torch.ones_like(target, dtype=torch.bool)
    # horizontal 4-2 = 2, vertical 4-1 = 3, anti-diagonal 1-2 = -1, diagonal 4-0 = 4; all beyond delta
    expected_official = np.mean([0.5 * 4, 0.5 * 9, 0.5 * 1, 0.5 * 16])
    expected_standard = np.mean([0.2 * (e - 0.1) for e in (2, 3, 1, 4)])
    assert gradient_huber_loss(pred, target, valid, 0.2, 'official').item() == pytest.approx(expected_official)
    assert gradient_huber_loss(pred, target, valid, 0.2, 'standard').item() == pytest.approx(expected_standard)
    # invalid pixels are set to 0 first: the target becomes [[0, 1], [2, 0]], differences -2, -1, -1 and 0
    valid[0, 0, 1, 1] = False
    masked = gradient_huber_loss(pred, target, valid, 0.2, 'official').item()
    assert masked == pytest.approx(np.mean([0.5 * 4, 0.5 * 1, 0.5 * 1, 0.2 * 0 + 0.5 * 0.04]))


def test_feature_alignment_kl_by_hand():
    projected = torch.tensor([[[0., 0.], [1., 0.]]])  # (B, tokens, C)
    target = torch.tensor([[[1., 0.], [0., 0.]]])
    p = F.softmax(target, dim=-1).numpy()
    q = F.softmax(projected, dim=-1).numpy()
    expected = (p * (np.log(p) - np.log(q))).mean()  # mean over every element, as the official kl_div
    assert feature_alignment_kl(projected, target).item() == pytest.approx(expected, rel=1e-6)
    assert feature_alignment_kl(target, target).item() == pytest.approx(0, abs=1e-7)


@pytest.fixture(scope='module')
def stage2_model():
    torch.manual_seed(0)
    return MODELS.build(tiny_cfg(TINY_STAGE2, init_from=None)).eval()


def _sample(depth: np.ndarray) -> BaseDataElement:
    return BaseDataElement(metainfo=dict(gt_depth=depth))


def test_single_step_and_fourier_hook(stage2_model):
    model = stage2_model
    imgs = torch.rand(1, 3, 32, 48)
    calls = []
    handle = model.unet.fftblock.register_forward_hook(lambda m, a, o: calls.append(o.shape))
    try:
        out = model(dict(imgs=imgs), mode='tensor')
    finally:
        handle.remove()
    assert out.shape == (1, 32, 48) and 0 <= out.min() and out.max() <= 1
    assert calls == [torch.Size([1, 64, 2, 3])]  # the mid-block grid: latent 4x6 halved
    # the block replaces the mid-block output: without it the UNet gives another result
    with torch.no_grad():
        latent = model.encode(imgs * 2 - 1)
        with_block = model.unet(latent, 1, encoder_hidden_states=model.text_embedding).sample
        block = model.unet.fftblock
        del model.unet.fftblock
        try:
            without = model.unet(latent, 1, encoder_hidden_states=model.text_embedding).sample
        finally:
            model.unet.fftblock = block
    assert (with_block - without).abs().max() > 1e-4
    samples = model.predict(dict(imgs=imgs))
    torch.testing.assert_close(samples[0].pred_sqrt_disparity.data[0], out[0])
    torch.testing.assert_close(samples[0].pred_depth.data[0], (out[0] + 0.1)**-2)


def test_official_layout_round_trip(tmp_path, stage2_model):
    from transformers import CLIPTextConfig, CLIPTextModel
    model = stage2_model
    folder = tmp_path / 'DepthMaster'
    model.unet.save_pretrained(folder / 'unet')
    model.vae.save_pretrained(folder / 'vae')
    torch.manual_seed(1)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=10, hidden_size=32, intermediate_size=37,
                                                num_hidden_layers=1, num_attention_heads=4, projection_dim=32,
                                                bos_token_id=0, eos_token_id=2)).eval()
    text_encoder.save_pretrained(folder / 'text_encoder')
    # the token ids come from the tokenizer's vocabulary, not from the encoder's config (SD2's says 0 and 2)
    (folder / 'tokenizer').mkdir()
    (folder / 'tokenizer/vocab.json').write_text(json.dumps({'a</w>': 0, '<|startoftext|>': 7, '<|endoftext|>': 9}))
    (folder / 'model_index.json').write_text(json.dumps(dict(_class_name='DepthMasterPipeline',
                                                             unet=['diffusers', 'UNet2DConditionModel'])))
    unet_keys = json.loads((folder / 'unet/config.json').read_text())
    assert 'block_out_channels' in unet_keys
    torch.manual_seed(2)
    loaded = MODELS.build(tiny_cfg(TINY_STAGE2, official_dir=str(folder))).eval()
    for key, value in model.unet.state_dict().items():
        torch.testing.assert_close(loaded.unet.state_dict()[key], value)
    assert any(k.startswith('fftblock.') for k in model.unet.state_dict())
    with torch.no_grad():
        expected = text_encoder(torch.tensor([[7, 9]]))[0]
    torch.testing.assert_close(loaded.text_embedding, expected)
    # the converter writes the same weights into a checkpoint that loads strictly
    spec = importlib.util.spec_from_file_location('depthmaster_to_perception', CONVERTER)
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    converter.convert(str(folder), str(tmp_path / 'converted.pth'), TINY_STAGE2)
    state = torch.load(tmp_path / 'converted.pth', weights_only=True)['state_dict']
    converted = MODELS.build(tiny_cfg(TINY_STAGE2)).eval()
    converted.load_state_dict(state, strict=True)
    torch.testing.assert_close(converted.text_embedding, expected)
    loaded.text_embedding.copy_(model.text_embedding)
    converted.text_embedding.copy_(model.text_embedding)
    imgs = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(loaded(dict(imgs=imgs)), model(dict(imgs=imgs)))
    torch.testing.assert_close(converted(dict(imgs=imgs)), model(dict(imgs=imgs)))
    # a UNet config that differs from the model's is named
    config = json.loads((folder / 'unet/config.json').read_text())
    config['block_out_channels'] = [32, 96]
    (folder / 'unet/config.json').write_text(json.dumps(config))
    with pytest.raises(ValueError, match='block_out_channels'):
        MODELS.build(tiny_cfg(TINY_STAGE2, official_dir=str(folder)))


def test_text_embedding_file(tmp_path, stage2_model):
    path = tmp_path / 'empty_text.npy'
    np.save(path, np.full((2, 32), 0.5, dtype=np.float32))
    stage2_model.load_text_embedding(str(path))
    assert (stage2_model.text_embedding == 0.5).all()
    np.save(path, np.zeros((3, 32), dtype=np.float32))
    with pytest.raises(ValueError, match=str(path)):
        stage2_model.load_text_embedding(str(path))


def test_stage1_losses_and_stage2_start(tmp_path):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg()).train()
    depth = np.random.uniform(2, 50, (40, 60)).astype(np.float32)
    depth[:10] = 0
    losses = model.loss(dict(imgs=torch.rand(2, 3, 32, 48)), [_sample(depth), _sample(depth)])
    assert set(losses) == {'loss_latent', 'loss_align'} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.align_projector[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.align_encoder.parameters())
    assert not model.align_encoder.training
    path = tmp_path / 'stage1.pth'
    torch.save(dict(state_dict=model.state_dict()), path)
    stage2 = MODELS.build(tiny_cfg(TINY_STAGE2, init_from=str(path)))
    torch.testing.assert_close(stage2.unet.conv_in.weight, model.unet.conv_in.weight)
    losses = stage2.train().loss(dict(imgs=torch.rand(1, 3, 32, 48)), [_sample(depth)])
    assert set(losses) == {'loss_mse', 'loss_grad'}


def test_vae_stage_trains_only_the_vae():
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(train_stage=0, align_encoder=None)).train()
    depth = np.random.uniform(2, 50, (32, 32)).astype(np.float32)
    losses = model.loss(dict(imgs=torch.rand(1, 3, 32, 32)), [_sample(depth)])
    assert set(losses) == {'loss_vae_rgb', 'loss_kl_rgb', 'loss_vae_depth', 'loss_kl_depth'}
    sum(losses.values()).backward()
    assert model.vae.encoder.conv_in.weight.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in model.unet.parameters())


def test_runs_through_video_depth_inferencer(stage2_model):
    from perception.apis import VideoDepthInferencer
    frames = [np.random.randint(0, 255, (30, 44, 3), dtype=np.uint8) for _ in range(3)]
    inferencer = VideoDepthInferencer(stage2_model, show_progress=False)
    assert inferencer.adapter is None and tuple(inferencer.window) == (1, 1, 0)
    results = list(inferencer(frames))
    assert [r.index for r in results] == [0, 1, 2]
    assert all(r.depth.shape == (30, 44) and not r.metric for r in results)
    # each frame at the network's size (sides rounded to multiples of 8), its display depth resized back
    from perception.evaluation.depth import resize_depth
    assert stage2_model.video_input_size(30, 44) == (32, 48)
    image = VideoDepthInferencer._to_tensor(frames[1], (32, 48))[None]
    expected = resize_depth(stage2_model.predict_window(image, 0, None, None)[0][0], (30, 44))
    np.testing.assert_allclose(results[1].depth, expected, rtol=1e-5)


@pytest.mark.slow
def test_two_image_overfit():
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(align_encoder=None)).train()
    imgs = torch.rand(2, 3, 32, 32)
    yy, xx = np.mgrid[0:32, 0:32]
    depths = [(3 + yy + xx).astype(np.float32), (70 - yy - xx).astype(np.float32)]
    samples = [_sample(d) for d in depths]
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    first = None
    for _ in range(60):
        loss = model.loss(dict(imgs=imgs), samples)['loss_latent']
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3 * first
