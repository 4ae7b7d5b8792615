"""ChronoDepth (issue 18): per-frame timesteps, the context-aware window schedule, the official numerics against a
hand-stepped Euler update, depth decoding, the official folder layout and training on a tiny random model."""
import copy
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from perception.registry import MODELS

# diffusers is installed by tools/setup_env.sh (requirements/optional.txt): no skip when it is missing.
import diffusers  # noqa: F401  isort: skip

ROOT = Path(__file__).parents[3]
TINY_CONFIG = str(ROOT / 'configs/chronodepth/chronodepth_tinysvd_synthkittiraw.py')
OFFICIAL_CONFIG = str(ROOT / 'configs/chronodepth/chronodepth_svd_official.py')
CONVERTER = ROOT / 'tools/model_converters/chronodepth_to_perception.py'


def tiny_cfg(**overrides) -> dict:
    cfg = copy.deepcopy(Config.fromfile(TINY_CONFIG).model)
    cfg.update(overrides)
    return cfg


@pytest.fixture
def model():
    torch.manual_seed(0)
    return MODELS.build(tiny_cfg(num_inference_steps=2, train_stage='full')).eval()


def test_per_frame_timesteps_equal_the_frame_repeated_embedding(model):
    from diffusers import UNetSpatioTemporalConditionModel
    unet = model.unet
    original = UNetSpatioTemporalConditionModel.from_config(unet.config)
    original.load_state_dict(unet.state_dict())
    sample = torch.randn(2, 3, 8, 8, 8)
    hidden = torch.randn(2, 1, 32)
    time_ids = torch.tensor([[6., 127., 0.], [6., 127., 0.]])
    with torch.no_grad():
        expected = original(sample, torch.tensor(1.5), hidden, time_ids).sample
        same = unet(sample, torch.full((2, 3), 1.5), hidden, time_ids)
        per_row = unet(sample, torch.full((2, 3), 1.5), hidden.repeat_interleave(3, dim=0), time_ids)
        mixed = unet(sample, torch.tensor([[1.5, 1.5, -4.0], [1.5, 1.5, 1.5]]), hidden, time_ids)
    torch.testing.assert_close(same, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(per_row, expected, rtol=1e-5, atol=1e-5)
    # A different timestep for one frame changes that video (temporal layers mix frames), not the other one.
    assert (mixed[0] - expected[0]).abs().max() > 1e-3
    torch.testing.assert_close(mixed[1], expected[1], rtol=1e-5, atol=1e-5)


def _recording(model):
    calls = []
    denoise = model.denoise

    def record(rgb, latents, timesteps):
        calls.append(dict(frames=len(rgb), latents=latents.clone(), timesteps=timesteps.clone()))
        return denoise(rgb, latents, timesteps)

    model.denoise = record
    return calls


def test_window_schedule_through_the_inferencer(model):
    from perception.apis.video_depth import VideoDepthInferencer
    calls = _recording(model)
    finished = []
    predict_window = model.predict_window

    def keep_state(*args):
        depths, state = predict_window(*args)
        finished.append(state['depth'].clone())
        return depths, state

    model.predict_window = keep_state
    frames = [np.random.RandomState(i).randint(0, 255, (60, 70, 3), dtype=np.uint8) for i in range(17)]
    results = list(VideoDepthInferencer(model, show_progress=False)(frames))
    assert [r.index for r in results] == list(range(17))
    assert all(r.depth.shape == (60, 70) and 0 <= r.depth.min() and r.depth.max() <= 1 for r in results)
    # Windows of 10 new frames, then 5 context + 5 new, then 8 context + 2 new (the window filled to n_tokens).
    steps = model.num_inference_steps
    assert [c['frames'] for c in calls] == [10] * steps + [10] * steps + [10] * steps
    timesteps = model.scheduler.timesteps
    for window, num_context in enumerate((0, 5, 8)):
        for i, call in enumerate(calls[window * steps:(window + 1) * steps]):
            assert torch.all(call['timesteps'][:num_context] == model.sigma_epsilon)
            assert torch.all(call['timesteps'][num_context:] == timesteps[i])
            if num_context:
                # The context latents are the finished ones, never re-noised or updated.
                torch.testing.assert_close(call['latents'][:num_context], finished[window - 1][-num_context:],
                                           rtol=0, atol=0)


def test_official_numerics_against_hand_stepped_euler(model):
    rgb_images = torch.rand(3, 3, 64, 64)
    outputs = {}
    for official in (True, False):
        model.official_numerics = official
        _, state = model.predict_window(rgb_images, 0, None, None)
        outputs[official] = state['depth']
    scheduler = model.scheduler
    scheduler.set_timesteps(2)
    sigmas = scheduler.sigmas
    rgb = model.encode(rgb_images * 2 - 1)
    for official in (True, False):
        generator = torch.Generator().manual_seed(model.seed)
        x = torch.randn(rgb.shape, generator=generator) * scheduler.init_noise_sigma
        for i, t in enumerate(scheduler.timesteps):
            s = sigmas[i]
            scaled = x / (s**2 + 1).sqrt()
            with torch.no_grad():
                v = model.denoise(rgb, scaled, t.expand(3))
            sample = scaled if official else x
            x0 = v * (-s / (s**2 + 1).sqrt()) + sample / (s**2 + 1)
            x = sample + (sample - x0) / s * (sigmas[i + 1] - s)
        torch.testing.assert_close(outputs[official], x, rtol=1e-4, atol=1e-5)
    assert (outputs[True] - outputs[False]).abs().max() > 1e-3


def test_infer_modes_keep_the_window_bounded(model):
    images = torch.rand(12, 3, 64, 64)
    for mode in ('ours', 'replacement', 'naive'):
        model.infer_mode = mode
        calls = _recording(model)
        depth = model.predict_video(images)
        model.__dict__.pop('denoise')
        assert depth.shape == (12, 64, 64)
        assert max(c['frames'] for c in calls) == model.n_tokens
        if mode != 'ours':
            assert all(torch.all(c['timesteps'] == c['timesteps'][-1]) for c in calls)


def test_depth_decoding(model):
    # Five pixels (rows) of three channels.
    channels = torch.tensor([[-3., 0., 3.], [0.5, 0.5, 0.5], [1.5, 0., -0.6], [2., 2., 2.], [-3., -3., 0.]])
    decoded = channels.t().reshape(1, 3, 5, 1).expand(1, 3, 5, 2)
    seen = []

    class Out:
        sample = decoded

    def decode(latents, num_frames):
        seen.append(latents)
        return Out

    model.vae.decode = decode
    latents = torch.full((1, 4, 1, 1), model.vae.config.scaling_factor)
    depth = model.decode_depth(latents)
    torch.testing.assert_close(seen[0], torch.ones(1, 4, 1, 1))
    # Channel means (0, 0.5, 0.3, 2, -2), clipped to [-1, 1], mapped to [0, 1].
    torch.testing.assert_close(depth, torch.tensor([0.5, 0.75, 0.65, 1., 0.]).view(1, 5, 1).expand(1, 5, 2))


def test_input_size_rule():
    from perception.models.depth.chronodepth import chronodepth_input_size
    assert chronodepth_input_size(480, 640) == (512, 640)
    assert chronodepth_input_size(100, 70) == (128, 64)
    # KITTI: 384x1216 after rounding exceeds max_res, so both sides are scaled by 1024 / 1242 first.
    assert chronodepth_input_size(375, 1242) == (320, 1024)
    assert chronodepth_input_size(375, 1242, max_res=2048) == (384, 1216)
    with pytest.raises(ValueError, match='at least 32'):
        chronodepth_input_size(20, 500)


def test_official_config_builds_at_the_official_size():
    cfg = Config.fromfile(OFFICIAL_CONFIG)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    unet = sum(p.numel() for p in model.unet.parameters())
    assert 1.50e9 < unet < 1.55e9  # SVD img2vid-xt's UNet: 1.52 B parameters
    assert model.unet.config.in_channels == 8 and model.image_embedding.shape == (1, 1024)
    assert model.video_window == (10, 5, 5)


def _save_official_layout(root, model, fp16_vae: bool):
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection
    torch.manual_seed(1)
    unet_dir, base = root / 'ChronoDepth-v1', root / 'ChronoDepth'
    model.unet.save_pretrained(unet_dir)
    vae = AutoencoderKLTemporalDecoder.from_config(model.vae.config)
    if fp16_vae:
        vae.half().save_pretrained(base / 'vae', variant='fp16')
    else:
        vae.save_pretrained(base / 'vae')
    EulerDiscreteScheduler.from_config(model.scheduler.config).save_pretrained(base / 'scheduler')
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                          num_attention_heads=2, image_size=32, patch_size=16,
                                                          projection_dim=32))
    clip.save_pretrained(base / 'image_encoder')
    processor = CLIPImageProcessor(size={'shortest_edge': 32}, crop_size={'height': 32, 'width': 32})
    processor.save_pretrained(base / 'feature_extractor')
    (base / 'model_index.json').write_text(json.dumps({'_class_name': 'ChronoDepthPipeline'}))
    return str(unet_dir), str(base), vae.float(), clip, processor


@pytest.mark.parametrize('fp16_vae', [False, pytest.param(True, marks=pytest.mark.slow)])
def test_official_layout_round_trip(tmp_path, model, fp16_vae):
    unet_dir, base, vae, clip, processor = _save_official_layout(tmp_path, model, fp16_vae)
    loaded = MODELS.build(tiny_cfg(official_dirs=dict(unet=unet_dir, base=base), num_inference_steps=2)).eval()
    for name, tensor in vae.state_dict().items():
        torch.testing.assert_close(loaded.vae.state_dict()[name], tensor, rtol=0, atol=0)
    # The embedding of the all-zeros image as the official pipeline computes it (transformers' processor).
    pixels = processor(images=torch.zeros(1, 3, 32, 32), do_resize=False, do_center_crop=False, do_rescale=False,
                       do_normalize=True, return_tensors='pt').pixel_values
    with torch.no_grad():
        expected = clip(pixels).image_embeds
    torch.testing.assert_close(loaded.image_embedding, expected, rtol=1e-5, atol=1e-6)
    for name, tensor in model.unet.state_dict().items():
        torch.testing.assert_close(loaded.unet.state_dict()[name], tensor, rtol=0, atol=0)
    sample, time_ids = torch.randn(1, 3, 8, 8, 8), torch.tensor([[6., 127., 0.]])
    hidden = torch.randn(3, 1, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.unet(sample, torch.tensor([0.5, 1., -4.]), hidden, time_ids),
                                   model.unet(sample, torch.tensor([0.5, 1., -4.]), hidden, time_ids),
                                   rtol=1e-5, atol=1e-5)

    # Through the converter: one checkpoint that loads into the config's model with identical outputs.
    from perception.apis.video_depth import VideoDepthInferencer
    spec = importlib.util.spec_from_file_location('chronodepth_to_perception', CONVERTER)
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    config = str(tmp_path / 'tiny.py')
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.num_inference_steps = 2
    cfg.dump(config)
    converter.convert(unet_dir, base, str(tmp_path / 'chronodepth.pth'), config)
    frames = [np.random.RandomState(i).randint(0, 255, (64, 64, 3), dtype=np.uint8) for i in range(3)]
    streamed = [r.depth for r in VideoDepthInferencer(config, str(tmp_path / 'chronodepth.pth'),
                                                      show_progress=False)(frames)]
    direct = loaded.predict_video(torch.stack([torch.from_numpy(f[..., ::-1].copy()).permute(2, 0, 1) / 255.
                                               for f in frames]))
    np.testing.assert_allclose(np.stack(streamed), direct.numpy(), rtol=0, atol=1e-5)


def test_official_layout_errors_name_the_folder(tmp_path, model):
    with pytest.raises(FileNotFoundError, match='model_index.json'):
        model.load_official(str(tmp_path), str(tmp_path))
    unet_dir, base, *_ = _save_official_layout(tmp_path, model, False)
    other = MODELS.build(tiny_cfg(unet=dict(tiny_cfg().unet, block_out_channels=(32, 96))))
    with pytest.raises(Exception, match='diffusion_pytorch_model.safetensors does not fit'):
        other.load_official(unet_dir, base)


def test_stages_freeze_the_other_layers():
    spatial = MODELS.build(tiny_cfg(train_stage='spatial'))
    temporal = MODELS.build(tiny_cfg(train_stage='temporal'))
    from perception.models.depth.chronodepth import is_temporal_parameter
    names = [n for n, _ in spatial.unet.named_parameters()]
    assert any(is_temporal_parameter(n) for n in names) and not all(is_temporal_parameter(n) for n in names)
    for n, p in spatial.unet.named_parameters():
        assert p.requires_grad != is_temporal_parameter(n)
    for n, p in temporal.unet.named_parameters():
        assert p.requires_grad == is_temporal_parameter(n)
    assert not any(p.requires_grad for p in spatial.vae.parameters())


def test_normalize_depth_per_clip():
    from perception.models.depth.chronodepth import ChronoDepth
    depth = torch.linspace(1, 100, 400).view(2, 2, 10, 10)
    depth[0, 0, 0, 0] = 0
    out = ChronoDepth.normalize_depth(depth)
    assert out.min() == -1 and out.max() == 1 and out[0, 0, 0, 0] == 1
    with pytest.raises(Exception, match='no valid depth'):
        ChronoDepth.normalize_depth(torch.zeros(1, 2, 4, 4))


@pytest.mark.slow
def test_two_clip_overfit():
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(train_stage='full', context_prob=0.5)).train()
    rng = torch.Generator().manual_seed(0)
    imgs = torch.rand(2, 4, 3, 32, 32, generator=rng)
    depths = 1 + 20 * torch.rand(2, 4, 32, 32, generator=rng)
    data = dict(imgs=imgs, depths=depths)

    def fixed_loss():
        torch.manual_seed(123)
        losses = [model.loss(data)['loss_depth'].item() for _ in range(4)]
        return sum(losses) / len(losses)

    before = fixed_loss()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    for _ in range(250):
        loss = model.loss(data)['loss_depth']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = fixed_loss()
    assert math.isfinite(after) and after < 0.3 * before, (before, after)


def test_clip_dataset_reads_consecutive_frames_and_depth(tmp_path):
    import cv2
    from perception.datasets.kitti_raw_clips import KittiRawDepthClipDataset
    from perception.fileio.depth import write_depth_png
    drive = '2011_09_26_drive_0001_sync'
    images = tmp_path / 'raw' / '2011_09_26' / drive / 'image_02' / 'data'
    depths = tmp_path / 'depth' / drive / 'proj_depth' / 'groundtruth' / 'image_02'
    images.mkdir(parents=True)
    depths.mkdir(parents=True)
    for i in range(7):
        cv2.imwrite(str(images / f'{i:010d}.png'), np.full((8, 12, 3), (i, 100, 200), np.uint8))
        write_depth_png(str(depths / f'{i:010d}.png'), np.full((8, 12), 1. + i, np.float32))
    dataset = KittiRawDepthClipDataset(str(tmp_path / 'raw'), str(tmp_path / 'depth'), clip_len=3, clip_stride=2,
                                       size=(6, 4))
    assert len(dataset) == 3
    item = dataset[1]['inputs']
    assert item['imgs'].shape == (3, 3, 4, 6) and item['imgs'].dtype == torch.uint8
    assert item['imgs'][:, 2, 0, 0].tolist() == [2, 3, 4]  # RGB: blue holds the frame index
    assert item['depths'][:, 0, 0].tolist() == [3., 4., 5.]
    (depths / f'{6:010d}.png').unlink()
    with pytest.raises(FileNotFoundError, match='0000000006.png: the depth'):
        KittiRawDepthClipDataset(str(tmp_path / 'raw'), str(tmp_path / 'depth'), clip_len=3)


def test_unet_precision_is_independent_of_the_latents(model):
    rgb, latents, timesteps = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8), torch.tensor([1., 1., -4.])
    with torch.no_grad():
        full = model.denoise(rgb, latents, timesteps)
        model.unet.to(torch.bfloat16)  # what fp16_on_gpu does on a GPU, in the half type the CPU runs
        half = model.denoise(rgb, latents, timesteps)
    assert half.dtype == torch.float32 and (half - full).abs().max() < 0.05 * full.abs().max()
    model.unet.half()  # as on a GPU; back on the CPU the UNet is fp32 again
    assert model.to('cpu').unet.dtype == torch.float32


def test_vae_stage_trains_only_the_vae():
    model = MODELS.build(tiny_cfg(train_stage='vae')).train()
    losses = model.loss(dict(imgs=torch.rand(1, 2, 3, 32, 32), depths=1 + torch.rand(1, 2, 32, 32)))
    assert set(losses) == {'loss_vae_rgb', 'loss_kl_rgb', 'loss_vae_depth', 'loss_kl_depth'}
    sum(losses.values()).backward()
    # (diffusers' temporal decoder leaves its mid-block attention unused with one layer per block)
    unused = [n for n, p in model.vae.named_parameters() if p.grad is None]
    assert all(n.startswith('decoder.mid_block.attentions.') for n in unused)
    assert all(p.requires_grad for p in model.vae.parameters())
    assert not any(p.requires_grad for p in model.unet.parameters())


def test_predict_runs_each_clip_as_a_video_at_the_input_size(model):
    samples = model(dict(imgs=torch.randint(0, 255, (1, 3, 3, 40, 50), dtype=torch.uint8)), None, mode='predict')
    depth = samples[0].pred_depth.data
    assert depth.shape == (3, 40, 50) and 0 <= depth.min() and depth.max() <= 1


def test_context_window_against_hand_stepped_euler(model):
    """A later window: the context latents enter at -4 unchanged, only the new frames are stepped."""
    images = torch.rand(12, 3, 64, 64)
    _, state = model.predict_window(images[:10], 0, None, None)
    context = state['depth'][-8:].clone()
    rgb = torch.cat([state['rgb'][-8:], model.encode(images[10:] * 2 - 1)])
    generator = copy.deepcopy(state['generator'])
    _, state = model.predict_window(images[5:], 5, None, state)
    scheduler = model.scheduler
    scheduler.set_timesteps(2)
    sigmas = scheduler.sigmas
    x = torch.randn(2, 4, 8, 8, generator=generator) * scheduler.init_noise_sigma
    for i, t in enumerate(scheduler.timesteps):
        s = sigmas[i]
        scaled = x / (s**2 + 1).sqrt()
        timesteps = torch.cat([torch.full((8, ), -4.), t.expand(2)])
        with torch.no_grad():
            v = model.denoise(rgb, torch.cat([context, scaled]), timesteps)[8:]
        x0 = v * (-s / (s**2 + 1).sqrt()) + scaled / (s**2 + 1)
        x = scaled + (scaled - x0) / s * (sigmas[i + 1] - s)
    torch.testing.assert_close(state['depth'][-2:], x, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(state['depth'][:7], context[1:], rtol=0, atol=0)


def test_stored_image_embedding_file(tmp_path, model):
    path = tmp_path / 'embedding.npy'
    np.save(path, np.arange(32, dtype=np.float32)[None])
    with pytest.warns(UserWarning, match='not computed from a CLIP encoder'):
        model.load_image_embedding(str(path))
    assert model.image_embedding.flatten().tolist() == list(range(32))
    np.save(path, np.zeros((2, 32), np.float32))
    with pytest.raises(Exception, match=r'embedding.npy: expected a finite \(1, 32\)'):
        model.load_image_embedding(str(path))
