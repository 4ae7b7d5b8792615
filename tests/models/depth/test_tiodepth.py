"""TiO-Depth: disparity bins, discrete view synthesis, MFM cost volume, masks, output modes, the staged
optimisers, a two-sample overfit and the configs. Tiny shapes throughout (2 CPU cores)."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet3d.structures import Det3DDataSample
from mmengine.config import Config, ConfigDict
from mmengine.dataset import Compose
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper, OptimWrapperDict, build_optim_wrapper
from mmengine.registry import init_default_scope

from perception.engine import stagewise_train_step
from perception.models.depth.tiodepth_layers import (MonocularFeatureMatching, VGG19Features,
                                                     exponential_disparity_bins, plane_mask, render_partner_view,
                                                     self_occlusion_mask, warp_by_disparity)
from perception.models.losses.photometric_loss import edge_aware_smoothness, photometric_loss
from perception.registry import DATASETS, MODELS

CONFIG_DIR = Path(__file__).resolve().parents[3] / 'configs'
DRIVE = '2011_09_26/2011_09_26_drive_0001_sync'


def tiny_cfg(**kwargs):
    cfg = dict(
        type='TiODepth',
        backbone=dict(
            type='mmdet.SwinTransformer', embed_dims=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2),
            window_size=4, patch_size=2, strides=(2, 2, 2, 2), out_indices=(0, 1, 2, 3), drop_path_rate=0.),
        decoder_channels=(8, 16, 16, 32),
        min_disp=0.5,
        max_disp=20.,
        data_preprocessor=dict(type='mmdet3d.Det3DDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                               bgr_to_rgb=True))
    cfg.update(kwargs)
    return cfg


def build_tiny(**kwargs):
    init_default_scope('perception')
    torch.manual_seed(0)
    return MODELS.build(tiny_cfg(**kwargs))


def samples(*sides, fx=100., baseline=0.5):
    return [
        Det3DDataSample(metainfo=dict(side=s, cam2img=np.diag([fx, fx, 1.]), baseline=baseline)) for s in sides
    ]


def texture(height, width, seed):
    """Smooth random colours in [0, 1] (bilinear upsampling of coarse noise)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 4 + 1, width // 4 + 1, generator=g)
    return F.interpolate(coarse, (height, width), mode='bilinear', align_corners=True)[0]


@pytest.fixture
def epoch():
    """Sets the epoch the model reads from mmengine's message hub, and resets it afterwards."""
    hub = MessageHub.get_current_instance()
    old = hub.get_info('epoch', 0)
    yield lambda e: hub.update_info('epoch', e)
    hub.update_info('epoch', old)


def test_exponential_disparity_bins_hand_values():
    bins = exponential_disparity_bins(49, 2., 300.)
    assert bins.shape == (49, ) and bins.dtype == torch.float32
    # d_k = 300 * 150^(k/48 - 1): 2 at k = 0, sqrt(2 * 300) at the middle, 300 at the end
    expected = {0: 2.0, 1: 2 * 150**(1 / 48), 24: 600**0.5, 47: 300 / 150**(1 / 48), 48: 300.0}
    for k, value in expected.items():
        assert bins[k].item() == pytest.approx(value, rel=1e-6)
    assert bins[1].item() == pytest.approx(2.2200626, rel=1e-6)
    ratios = bins[1:] / bins[:-1]
    torch.testing.assert_close(ratios, torch.full_like(ratios, 150**(1 / 48)))
    torch.testing.assert_close(exponential_disparity_bins(3, 1., 4.), torch.tensor([1., 2., 4.]))
    with pytest.raises(ValueError):
        exponential_disparity_bins(49, 300., 2.)


@pytest.mark.parametrize('direction', [1., -1.])
def test_view_synthesis_by_the_probability_volume_recovers_a_known_shift(direction):
    height, width, shift = 8, 40, 4
    disparities = torch.tensor([1., 2., 4., 8.])
    wide = texture(height, width + shift, seed=1)[None]
    # A left view L and its right view R(u) = L(u + d) (direction +1), or the reverse pair (-1).
    left, right = wide[..., :width], wide[..., shift:shift + width]
    view, partner = (left, right) if direction > 0 else (right, left)
    logits = torch.zeros(1, 4, height, width)
    logits[:, 2] = 30.  # all the probability on d = 4
    synth = render_partner_view(logits, view, disparities, torch.tensor([direction]))
    # Away from the border, where every candidate lies inside the view, the partner is reproduced.
    inner = slice(0, width - 8) if direction > 0 else slice(8, width)
    torch.testing.assert_close(synth[..., inner], partner[..., inner], atol=1e-5, rtol=0)
    # A wrong disparity does not.
    logits = torch.zeros(1, 4, height, width)
    logits[:, 1] = 30.
    wrong = render_partner_view(logits, view, disparities, torch.tensor([direction]))
    assert (wrong[..., inner] - partner[..., inner]).abs().mean() > 0.01


def test_warp_by_disparity_reconstructs_the_target():
    height, width, shift = 6, 32, 3
    wide = texture(height, width + shift, seed=2)[None]
    left, right = wide[..., :width], wide[..., shift:shift + width]
    disp = torch.full((1, 1, height, width), float(shift))
    recon, inside = warp_by_disparity(right, disp, torch.tensor([1.]))
    torch.testing.assert_close(recon[..., shift:], left[..., shift:], atol=1e-5, rtol=0)
    assert inside[..., :shift].sum() == 0 and inside[..., shift:].all()
    recon, inside = warp_by_disparity(left, disp, torch.tensor([-1.]))
    torch.testing.assert_close(recon[..., :-shift], right[..., :-shift], atol=1e-5, rtol=0)
    assert inside[..., -shift:].sum() == 0


@pytest.mark.parametrize('direction', [1., -1.])
@pytest.mark.parametrize('stride', [1, 2])
def test_cost_volume_of_a_known_disparity_peaks_at_it(direction, stride):
    torch.manual_seed(0)
    channels, height, width = 64, 6, 48
    disparities = torch.tensor([2., 4., 8., 16.])  # input pixels
    true_bin = 2  # 8 input pixels = 8 / stride feature pixels
    shift = int(disparities[true_bin]) // stride
    mfm = MonocularFeatureMatching(channels, num_bins=4)
    with torch.no_grad():
        for conv in (mfm.query, mfm.key):  # q = k = the first 16 channels
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[:, :16, 0, 0] = torch.eye(16)
    wide = torch.randn(1, channels, height, width + shift, generator=torch.Generator().manual_seed(0))
    # Unit-norm matching channels: by Cauchy-Schwarz the true shift is the only maximum of <q, k>.
    wide[:, :16] = F.normalize(wide[:, :16], dim=1)
    left, right = wide[..., :width], wide[..., shift:shift + width]
    target, partner = (left, right) if direction > 0 else (right, left)
    cost = mfm.cost_volume(target, partner, disparities, torch.tensor([direction]), input_width=width * stride)
    assert cost.shape == (1, 4, height, width)
    # Columns whose every candidate stays inside the partner (16 input pixels at most).
    reach = 16 // stride
    inner = slice(reach, width) if direction > 0 else slice(0, width - reach)
    assert (cost.argmax(1)[..., inner] == true_bin).all()
    fused, raw = mfm(target, partner, disparities, torch.tensor([direction]), width * stride)
    assert fused.shape == target.shape and torch.equal(raw, cost)


def test_self_occlusion_mask_of_a_foreground_block():
    disp = torch.full((1, 1, 5, 60), 2.)
    disp[..., 20:30] = 10.
    # Left view: the background just left of the block (8 = 10 - 2 columns) is hidden in the right view.
    left = self_occlusion_mask(disp, torch.tensor([1.]))
    assert left[0, 0, 2, 12:20].max() < 0.01
    assert left[0, 0, 2, :11].min() == 1 and left[0, 0, 2, 20:].min() == 1
    # Right view: mirrored, the background just right of the block.
    right = self_occlusion_mask(disp, torch.tensor([-1.]))
    assert right[0, 0, 2, 30:38].max() < 0.01
    assert right[0, 0, 2, :30].min() == 1 and right[0, 0, 2, 39:].min() == 1
    both = self_occlusion_mask(disp.expand(2, -1, -1, -1), torch.tensor([1., -1.]))
    torch.testing.assert_close(both, torch.cat([left, right]))


def test_plane_mask():
    depth = torch.full((1, 1, 12, 20), 10.)
    depth[..., 10:] = 30.
    weight = plane_mask(depth)
    assert weight[0, 0, 3:9, 3:7].min() == 1 and weight[0, 0, 3:9, 13:17].min() == 1
    assert weight[0, 0, :, 8:12].max() == 0  # within a pixel of the step
    assert weight[0, 0, 0].max() == 0  # the zero padding makes the border an edge, as officially


def test_photometric_and_smoothness_losses():
    img = texture(16, 24, seed=3)[None]
    assert photometric_loss(img, img).item() == pytest.approx(0, abs=1e-6)
    noisy = (img + 0.1 * torch.randn_like(img)).clamp(0, 1)
    l1 = (noisy - img).abs().mean()
    assert photometric_loss(noisy, img, ssim_weight=0., l1_weight=1.).item() == pytest.approx(l1.item(), rel=1e-5)
    assert photometric_loss(noisy, img).item() > 0.15 * l1.item()
    flat = torch.full((1, 1, 16, 24), 3.)
    assert edge_aware_smoothness(flat, img, gamma=2., grey=True, second_order=True).item() == 0
    ramp = torch.arange(24.).expand(1, 1, 16, 24)
    # Unit steps along x, damped by the image edges; the second-order variant counts both sides.
    first = edge_aware_smoothness(ramp, torch.zeros_like(img)).item()
    assert first == pytest.approx(23 / 24, rel=1e-5)
    assert edge_aware_smoothness(ramp, torch.zeros_like(img), second_order=True).item() == \
        pytest.approx(46 / 24, rel=1e-5)
    assert edge_aware_smoothness(ramp, img, gamma=10.).item() < first


def test_output_modes(epoch):
    model = build_tiny(test_out_modes=('refine', 'stereo', 'mono')).eval()
    pair = torch.rand(2, 2, 3, 32, 64)
    metas = samples('l', 'r')
    with torch.no_grad():
        logits = model(dict(imgs=pair), metas, mode='tensor')
        assert set(logits) == {'refine', 'stereo', 'mono'}
        for value in logits.values():
            assert value.shape == (2, 49, 32, 64)
    # The monocular modes need one view only, and give the same result from it.
    model.test_out_modes = ('mono', 'refine')
    with torch.no_grad():
        single = model(dict(imgs=pair[:, 0]), None, mode='tensor')
        torch.testing.assert_close(single['mono'], logits['mono'])
        torch.testing.assert_close(single['refine'], logits['refine'])
        assert not torch.allclose(logits['mono'], logits['refine'])
    model.test_out_modes = ('stereo', 'mono', 'refine')
    with torch.no_grad():
        out = model(dict(imgs=pair), samples('l', 'r', fx=80., baseline=0.5), mode='predict')
    for i, sample in enumerate(out):
        assert sample.pred_depth.data.shape == (1, 32, 64)
        for mode in ('stereo', 'mono', 'refine'):
            depth = sample.get(f'pred_depth_{mode}').data
            assert depth.shape == (1, 32, 64)
            disp = model.expected_disparity(logits[mode][i:i + 1])[0]
            torch.testing.assert_close(depth, 80. * 0.5 / disp)  # fx * baseline / disparity
            assert 40. / 20. <= depth.min() and depth.max() <= 40. / 0.5
        torch.testing.assert_close(sample.pred_depth.data, sample.pred_depth_stereo.data)
    with pytest.raises(ValueError, match='partner'):
        model(dict(imgs=pair[:, 0]), metas, mode='tensor')
    with pytest.raises(KeyError, match='stereo_direction or side'):
        model(dict(imgs=pair), [Det3DDataSample(), Det3DDataSample()], mode='tensor')


def test_stereo_direction_from_side_and_flip():
    model = build_tiny()
    metas = [
        Det3DDataSample(metainfo=dict(side='l')),
        Det3DDataSample(metainfo=dict(side='r')),
        Det3DDataSample(metainfo=dict(side='l', flip=True, flip_direction='horizontal')),
        Det3DDataSample(metainfo=dict(side='l', flip=True, flip_direction='vertical')),
        Det3DDataSample(metainfo=dict(stereo_direction=-1, side='l')),
    ]
    state = model.prepare_stages(dict(imgs=torch.rand(5, 2, 3, 8, 16)), metas)
    assert state['direction'].tolist() == [1., -1., -1., 1., -1.]


def test_stage_losses_follow_the_epoch(epoch):
    model = build_tiny(stage_start_epochs=(0, 2, 3))
    pair = dict(imgs=torch.rand(1, 2, 3, 32, 64))
    epoch(0)
    assert model.active_stages() == ('mono', )
    assert set(model.loss(pair, samples('l'))) == {'loss_mono_photo', 'loss_mono_smooth'}
    epoch(2)
    assert model.active_stages() == ('mono', 'stereo')
    epoch(3)
    losses = model.loss(pair, samples('r'))
    assert set(losses) == {
        'loss_mono_photo', 'loss_mono_smooth', 'loss_stereo_photo', 'loss_stereo_smooth', 'loss_stereo_cost3',
        'loss_stereo_cost2', 'loss_stereo_cost1', 'loss_stereo_grad', 'loss_stereo_guide', 'loss_refine_distill'
    }
    assert all(torch.isfinite(v) for v in losses.values())


def test_stage_optimisers_update_their_own_parameters(epoch):
    model = build_tiny(stage_start_epochs=(0, 1, 1))
    optim_wrapper = build_optim_wrapper(
        model,
        dict(constructor='StagewiseOptimWrapperConstructor',
             mono=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.999))),
             stereo=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3)),
             refine=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=2e-3)),
             paramwise_cfg=dict(stereo=dict(decoder=0.1), refine=dict(decoder=0.1))))
    assert isinstance(optim_wrapper, OptimWrapperDict) and set(optim_wrapper.keys()) == {'mono', 'stereo', 'refine'}
    assert [g['lr'] for g in optim_wrapper['stereo'].optimizer.param_groups] == pytest.approx([1e-3, 1e-4])
    assert [g['lr'] for g in optim_wrapper['refine'].optimizer.param_groups] == pytest.approx([2e-3, 2e-4])
    assert optim_wrapper['mono'].param_groups[0]['betas'] == (0.5, 0.999)
    groups = model.stage_parameters()
    n_mono = sum(p.numel() for p in groups['mono']['base'])
    n_all = sum(p.numel() for p in model.parameters())
    n_other = sum(p.numel() for k in ('matching', 'distill') for p in model.decoder.parameter_groups()[k])
    assert n_mono + n_other == n_all

    data = dict(inputs=dict(img=[torch.rand(2, 3, 32, 64) * 255]), data_samples=samples('l'))
    snapshot = lambda: {k: v.detach().clone() for k, v in model.named_parameters()}  # noqa: E731
    epoch(0)
    before = snapshot()
    log_vars = stagewise_train_step(model, copy.deepcopy(data), optim_wrapper)
    after = snapshot()
    assert set(log_vars) == {'loss', 'loss_mono_photo', 'loss_mono_smooth'}
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith('backbone.') for k in changed)
    assert not any('.matching.' in k or 'distilled' in k for k in changed)
    epoch(1)
    log_vars = stagewise_train_step(model, copy.deepcopy(data), optim_wrapper)
    assert 'loss_refine_distill' in log_vars and 'loss_stereo_photo' in log_vars
    final = snapshot()
    changed = {k for k in after if not torch.equal(after[k], final[k])}
    assert any('.matching.' in k for k in changed) and any('distilled' in k for k in changed)


@pytest.mark.slow
def test_two_sample_overfit(epoch):
    """Two textured planes seen by both cameras (disparity 4 px, left target; 6 px, right target).

    All stages train together with one optimiser: the self-supervised losses of the mono and stereo
    stages fall clearly. The distillation target moves while its teachers sharpen, so the refine stage is
    then checked on its own, against frozen teachers."""
    model = build_tiny(stage_start_epochs=(0, 0, 0))
    height, width = 32, 64
    pairs, metas = [], []
    for seed, shift, side in ((5, 4, 'l'), (6, 6, 'r')):
        wide = texture(height, width + shift, seed) * 255
        left, right = wide[..., :width], wide[..., shift:shift + width]
        pairs.append(torch.stack([left, right] if side == 'l' else [right, left]))
        metas += samples(side)
    data = dict(inputs=dict(img=pairs), data_samples=metas)
    optim_wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.5, 0.999)))
    epoch(0)
    history = []
    # 60 steps: after 30, the stereo loss ended anywhere from 0.30 to 0.87 of its start over the model seeds 0-3
    # (a threshold met by seed luck); after 60, at most 0.54 (mono) and 0.15 (stereo).
    for _ in range(60):
        log_vars = model.train_step(copy.deepcopy(data), optim_wrapper)
        history.append({k: v.item() for k, v in log_vars.items()})
    for key in ('loss_mono_photo', 'loss_stereo_photo'):
        first = np.mean([h[key] for h in history[:3]])
        last = np.mean([h[key] for h in history[-3:]])
        assert last < 0.6 * first, (key, first, last)
    assert all(np.isfinite(v) for h in history for v in h.values())

    state = model.prepare_stages(dict(imgs=torch.stack(pairs) / 255), metas)
    with torch.no_grad():
        model.stage_loss('stereo', state)  # fills the teachers
    optimizer = torch.optim.Adam([p for group in model.stage_parameters()['refine'].values() for p in group],
                                 lr=2e-3)
    distill = []
    for _ in range(30):
        loss = model.stage_loss('refine', state)['loss_refine_distill']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        distill.append(loss.item())
    # How far the distilled branch gets depends on the initialisation: over the model seeds 0-3 the mean of the
    # last three losses ended at 0.25 to 0.80 of the first.
    assert np.mean(distill[-3:]) < 0.85 * distill[0], distill


def test_perceptual_loss_reads_a_local_torchvision_vgg19(tmp_path, epoch):
    vgg = VGG19Features()
    # torchvision's names: conv layers of vgg19.features up to pool3
    assert sorted({int(k.split('.')[1]) for k in vgg.state_dict()}) == [0, 2, 5, 7, 10, 12, 14, 16]
    state = {k: torch.randn_like(v) for k, v in vgg.state_dict().items()}
    state['features.19.weight'] = torch.zeros(512, 256, 3, 3)  # the rest of a full checkpoint is ignored
    state['classifier.0.weight'] = torch.zeros(1, 1)
    path = tmp_path / 'vgg19.pth'
    torch.save(state, path)
    model = build_tiny(vgg_checkpoint=str(path))
    model.init_weights()
    torch.testing.assert_close(model.vgg.features[16].weight, state['features.16.weight'])
    assert not any(p.requires_grad for p in model.vgg.parameters())
    assert not any(p is q for p in model.vgg.parameters() for g in model.stage_parameters().values()
                   for ps in g.values() for q in ps)
    epoch(0)
    losses = model.loss(dict(imgs=torch.rand(1, 2, 3, 32, 64)), samples('l'))
    assert losses['loss_mono_perceptual'] > 0
    with pytest.raises(FileNotFoundError, match='vgg_checkpoint'):
        build_tiny(vgg_checkpoint=str(tmp_path / 'missing.pth')).init_weights()


OFFICIAL = 'tiodepth/tiodepth_swin-t_50e_kittiraw-depth.py'
SYNTH = 'tiodepth/tiodepth_swin-w32_10e_synthkittiraw-depth.py'
SYNTH_FROM_MONO = 'tiodepth/tiodepth_swin-w32_from-mono_4e_synthkittiraw-depth.py'


@pytest.mark.parametrize('name', [OFFICIAL, SYNTH, SYNTH_FROM_MONO])
def test_config_builds(name):
    cfg = Config.fromfile(CONFIG_DIR / name)
    init_default_scope(cfg.default_scope)
    assert cfg.default_scope == 'perception'
    model = MODELS.build(cfg.model)  # builds only: nothing is loaded
    assert model.vgg is None  # perceptual loss off unless a local vgg19 is given
    assert model.disparities.shape == (49, )
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert set(optim_wrapper.keys()) == {'mono', 'stereo', 'refine'} == set(cfg.param_scheduler)
    for key in ('train_dataloader', 'val_dataloader', 'test_evaluator', 'train_cfg'):
        assert key in cfg, key
    Compose(cfg.train_pipeline)
    Compose(cfg.test_pipeline)
    if name == OFFICIAL:
        assert cfg.train_dataloader.batch_size == 8 and cfg.train_cfg.max_epochs == 50
        assert cfg.train_cfg.type == 'StagewiseTrainLoop'  # runs the per-stage optimisers built above
        assert model.disparities[0].item() == pytest.approx(2.) and model.disparities[-1].item() == pytest.approx(300.)
        assert model.stage_start_epochs == dict(mono=0, stereo=20, refine=30)
        assert cfg.param_scheduler.mono[0].milestones == [20, 30, 40, 45]
        assert optim_wrapper['mono'].param_groups[0]['lr'] == pytest.approx(1e-4)
        assert model.backbone.patch_embed.projection.kernel_size == (4, 4)
        assert model.backbone.patch_embed.projection.stride == (2, 2)
        assert sum(p.numel() for p in model.backbone.parameters()) > 27e6  # Swin-T
    if name == SYNTH:  # the official stage proportions on 10 epochs
        assert cfg.train_cfg.max_epochs == 10 and model.stage_start_epochs == dict(mono=0, stereo=4, refine=6)
    if name == SYNTH_FROM_MONO:  # stereo and refine from the trained mono stage
        assert cfg.load_from.endswith('tiodepth-mono_swin-w32_12e_synthkittiraw-depth/epoch_12.pth')
        assert cfg.train_cfg.max_epochs == 4 and model.stage_start_epochs == dict(mono=0, stereo=0, refine=2)
        assert optim_wrapper['mono'].param_groups[0]['lr'] == pytest.approx(2.5e-5)


def real_frame_dataset(cfg, shared_dir, tmp_path, **overrides):
    """The config's training dataset over one frame (left view) of the real KITTI raw drive in tests/data."""
    split = tmp_path / 'split.txt'
    split.write_text(f'{DRIVE} 1 l\n')
    return DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=str(shared_dir / 'data' / 'kitti_raw_mini'),
                               ann_file=str(split), **overrides))


def test_config_pipeline_loads_a_stereo_pair(shared_dir, tmp_path):
    """The synthetic config's pipeline on a real KITTI raw frame: the pair stacked as (2, 3, H, W), one
    random resize, crop and flip for both views, and the metainfo the model reads."""
    cfg = Config.fromfile(CONFIG_DIR / SYNTH)
    init_default_scope(cfg.default_scope)
    info = real_frame_dataset(cfg, shared_dir, tmp_path, pipeline=[])[0]
    pipeline = Compose(cfg.train_pipeline)
    torch.manual_seed(0)
    np.random.seed(0)
    flips = set()
    for _ in range(6):
        # The same image as both views: shared random parameters keep them identical.
        out = pipeline(dict(copy.deepcopy(info), stereo_img_path=info['img_path']))
        img = out['inputs']['img']
        assert img.shape == (2, 3, 96, 320)
        assert torch.equal(img[0], img[1])
        meta = out['data_samples'].metainfo
        assert meta['side'] == 'l' and meta['baseline'] == pytest.approx(0.5327, abs=1e-4)
        assert 320 / 1242 <= meta['scale_factor'][0] <= 1.5 * 320 / 1242 + 1e-6
        flips.add(meta['flip'])
    assert flips == {True, False}
    out = pipeline(copy.deepcopy(info))
    assert not torch.equal(out['inputs']['img'][0], out['inputs']['img'][1])
    test = Compose(cfg.test_pipeline)(dict(copy.deepcopy(info), gt_depth=np.ones((375, 1242), np.float32)))
    assert test['inputs']['img'].shape == (2, 3, 96, 320)
    assert test['data_samples'].gt_depth.shape == (375, 1242)
    assert test['data_samples'].scale_factor[0] == pytest.approx(320 / 1242)


AUGUNDO = dict(type='AugUndo', image_keys=('imgs', ), intrinsics_key=None, undo_keys=('mono_logits', ))


def test_augundo_wraps_the_monocular_stage(epoch):
    model = build_tiny(stage_start_epochs=(0, 1, 2))
    pair = dict(imgs=torch.stack([torch.stack([texture(32, 64, s), texture(32, 64, s + 1)]) for s in (1, 3)]))
    metas = samples('l', 'r')
    epoch(0)
    plain = model.loss(pair, metas)
    identity = MODELS.build(dict(AUGUNDO, model=model)).loss(pair, metas)
    assert set(identity) == set(plain)
    for key in plain:
        torch.testing.assert_close(identity[key], plain[key])
    wrapper = MODELS.build(dict(AUGUNDO, model=model, seed=0, geometric=[
        dict(type='Rotate', max_angle=10., prob=1.), dict(type='CropAndPad', scale=(0.8, 0.9), prob=1.)]))
    augmented = wrapper.loss(pair, metas)
    assert torch.isfinite(augmented['loss_mono_photo'])
    assert not torch.allclose(augmented['loss_mono_photo'], plain['loss_mono_photo'])
    model.zero_grad()
    sum(augmented.values()).backward()
    assert model.backbone.patch_embed.projection.weight.grad.abs().sum() > 0
    epoch(1)
    with pytest.raises(RuntimeError, match='monocular stage'):
        wrapper.loss(pair, metas)


def test_ranking_loss_reads_its_teacher_from_the_metainfo(epoch):
    model = build_tiny(loss_ranking=dict(type='DepthRankingLoss', num_pairs=64, box_size=(16, 16)))
    pair = dict(imgs=torch.rand(2, 2, 3, 32, 64, generator=torch.Generator().manual_seed(0)))
    metas = samples('l', 'r')
    epoch(0)
    with pytest.raises(KeyError, match='depth_prior'):
        model.loss(pair, metas)
    rng = np.random.default_rng(0)
    for meta in metas:
        meta.set_metainfo(dict(depth_prior=rng.uniform(1, 10, (32, 64)).astype(np.float32)))
    losses = model.loss(pair, metas)
    assert losses['loss_mono_ranking'].item() > 0  # a random student against a random teacher
    for meta in metas:
        meta.set_metainfo(dict(depth_prior=np.zeros((32, 64), np.float32)))  # no teacher value anywhere
    assert model.loss(pair, metas)['loss_mono_ranking'].item() == 0


@pytest.mark.parametrize('name', [f'tiodepth/tiodepth-mono_swin-w32{variant}_12e_synthkittiraw-depth.py'
                                  for variant in ('', '_augundo', '_ranking')])
def test_mono_comparison_configs_build(name, shared_dir, tmp_path):
    cfg = Config.fromfile(CONFIG_DIR / name)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    tio = model.model if 'augundo' in name else model
    assert type(model).__name__ == ('AugUndo' if 'augundo' in name else 'TiODepth')
    assert tio.stage_start_epochs['stereo'] > cfg.train_cfg.max_epochs == 12
    assert (tio.loss_ranking is not None) == ('ranking' in name)
    build_optim_wrapper(model, cfg.optim_wrapper)
    Compose(cfg.test_pipeline)
    meta = real_frame_dataset(cfg, shared_dir, tmp_path)[0]['data_samples'].metainfo
    if 'ranking' in name:
        prior = meta['depth_prior']
        assert prior.shape == (96, 320) and (prior > 0).mean() > 0.3
    else:
        assert 'depth_prior' not in meta


def test_backbone_loads_only_through_its_init_cfg(tmp_path, recwarn):
    source = build_tiny().backbone
    assert any('random initialisation' in str(w.message) for w in recwarn)
    # mmdet's Swin keeps only the 'backbone.' keys of a checkpoint (an mmdet model's layout)
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in source.state_dict().items()}}, tmp_path / 'swin.pth')
    cfg = tiny_cfg()
    # as a config file gives it: mmdet's Swin reads init_cfg by attribute
    cfg['backbone'] = dict(cfg['backbone'],
                           init_cfg=ConfigDict(type='Pretrained', checkpoint=str(tmp_path / 'swin.pth')))
    recwarn.clear()
    torch.manual_seed(1)
    model = MODELS.build(cfg)
    assert not [w for w in recwarn if 'random initialisation' in str(w.message)]
    model.init_weights()
    for name, value in source.state_dict().items():
        if name.startswith('patch_embed.projection'):  # replaced by the overlapping embedding
            continue
        assert torch.equal(model.backbone.state_dict()[name], value), name
    cfg['backbone']['init_cfg']['checkpoint'] = str(tmp_path / 'missing_swin.pth')
    with pytest.raises(FileNotFoundError, match='missing_swin'):
        MODELS.build(cfg).init_weights()
