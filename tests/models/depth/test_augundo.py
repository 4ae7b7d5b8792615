"""AugUndo: geometric transforms and their undo, intrinsics, sparse depth, photometric jitter, and the
model-agnostic wrapper around a toy depth model."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper

from perception.models.depth import (AugUndo, Brightness, Contrast, CropAndPad, Gamma, GeometricChain,
                                     HorizontalFlip, Hue, ResizeAndCrop, ResizeAndPad, Rotate, Saturation, Warp)
from perception.registry import BATCH_AUGMENTS, MODELS
from perception.structures.camera import flip_cam2img, project_points, transform_cam2img

B, H, W = 3, 24, 40

RESAMPLING = [
    pytest.param(lambda: Rotate(max_angle=30.0, prob=1.0), id='rotate'),
    pytest.param(lambda: ResizeAndPad(scale=(0.5, 0.9), prob=1.0), id='resize_and_pad'),
    pytest.param(lambda: ResizeAndCrop(scale=(1.1, 1.5), prob=1.0), id='resize_and_crop'),
]
ALL = [
    pytest.param(lambda: HorizontalFlip(prob=1.0), id='flip'),
    pytest.param(lambda: CropAndPad(scale=(0.6, 0.9), prob=1.0), id='crop_and_pad'),
    *RESAMPLING,
]


def _grid(height=H, width=W):
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing='ij')
    return u, v


def _ramp(batch=B, height=H, width=W):
    """An image linear in (u, v): bilinear resampling reproduces it exactly away from the frame's edge."""
    u, v = _grid(height, width)
    return (0.2 + 0.01 * u + 0.02 * v).float().expand(batch, 1, height, width).contiguous()


def _smooth(batch=B, height=H, width=W):
    """A smooth RGB image (gradients <= 0.03 per pixel)."""
    u, v = _grid(height, width)
    base = 0.5 + 0.25 * torch.sin(2 * math.pi * 0.7 * u / width + 0.3) * torch.cos(2 * math.pi * 0.6 * v / height)
    img = torch.stack([base, 0.8 * base + 0.1, 1.0 - base], dim=0).float()
    return img.expand(batch, 3, height, width).contiguous()


def _inner(valid, margin):
    """The valid region without ``margin`` pixels next to invalid pixels or to the frame's edge."""
    padded = F.pad(1 - valid, (margin,) * 4, value=1.0)
    return (1 - F.max_pool2d(padded, 2 * margin + 1, stride=1)).bool()


def _intrinsics(batch=B):
    k = torch.tensor([[30.0, 0.0, 19.2, 0.0], [0.0, 28.0, 11.7, 0.0], [0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    k = k.expand(batch, 3, 4).clone()
    k[:, 0, 3] = 30.0 * 0.54  # a KITTI-like baseline term, which a flip must also transform
    return k


# ---------------------------------------------------------------------------------------------- round trips

@pytest.mark.parametrize('make', ALL)
def test_forward_keeps_size_and_reverse_restores_the_frame(make):
    x = torch.rand(B, 2, H, W)
    out, cam2img, valid = make().forward(x, _intrinsics().float(), torch.Generator().manual_seed(0))
    assert out.shape == x.shape and cam2img.shape == (B, 3, 4) and valid.shape == (B, 1, H, W)
    assert set(valid.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize('make', [ALL[0], ALL[1]])
def test_flip_and_integer_crop_round_trip_exactly(make):
    transform = make()
    x = torch.rand(B, 3, H, W)
    out, _, valid = transform.forward(x, generator=torch.Generator().manual_seed(3))
    back, back_valid = transform.reverse(out)
    mask = back_valid.bool().expand_as(x)
    assert mask.any()
    assert torch.equal(back[mask], x[mask])
    # the augmented frame holds exactly the input's values where valid (integer pixel moves)
    assert torch.isin(out[valid.bool().expand_as(out)], x).all()


def test_flip_is_the_mirror_and_undoes_every_scale_exactly():
    x = torch.rand(B, 1, H, W)
    flip = HorizontalFlip(prob=1.0)
    out, _, valid = flip.forward(x)
    assert torch.equal(out, x.flip(-1)) and bool(valid.all())
    for scale in (1, 2, 4):
        pred = F.avg_pool2d(x, scale).flip(-1)  # what a decoder predicts at 1/scale on the flipped image
        back, back_valid = flip.reverse(pred)
        assert torch.equal(back, F.avg_pool2d(x, scale)) and bool(back_valid.all())


def test_crop_and_pad_is_an_integer_shift_of_its_window():
    crop = CropAndPad(scale=(0.5, 0.8), prob=1.0)
    x = torch.rand(B, 1, H, W)
    out, _, valid = crop.forward(x, generator=torch.Generator().manual_seed(5))
    matrix = crop.warp.matrix
    assert torch.equal(matrix[:, :2, :2], torch.eye(2, dtype=torch.float64).expand(B, 2, 2))
    for b in range(B):
        tx, ty = int(matrix[b, 0, 2]), int(matrix[b, 1, 2])
        rows, cols = torch.nonzero(valid[b, 0], as_tuple=True)
        assert torch.equal(out[b, 0, rows, cols], x[b, 0, rows - ty, cols - tx])
        # the valid region is one rectangle of at least half the frame per side
        assert valid[b, 0].sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert rows.max() - rows.min() + 1 >= H // 2 and cols.max() - cols.min() + 1 >= W // 2


@pytest.mark.parametrize('make', RESAMPLING)
def test_resampling_round_trip_is_exact_on_a_linear_image(make):
    # Bilinear interpolation reproduces a linear function exactly, so away from the frame's edge (where
    # grid_sample clamps) the round trip leaves only float32 rounding.
    transform = make()
    x = _ramp()
    out, _, _ = transform.forward(x, generator=torch.Generator().manual_seed(7))
    back, back_valid = transform.reverse(out)
    interior = _inner(back_valid, 2)
    assert interior.float().mean() > 0.2
    assert (back - x).abs()[interior].max() < 1e-5


@pytest.mark.parametrize('make', RESAMPLING)
def test_resampling_round_trip_is_close_on_a_smooth_image(make):
    # Over the whole valid region, edges included: two bilinear passes and the edge clamp of a smooth image
    # (gradient <= 0.03 per pixel) err by well under a grey level.
    transform = make()
    x = _smooth()
    out, _, _ = transform.forward(x, generator=torch.Generator().manual_seed(11))
    back, back_valid = transform.reverse(out)
    mask = back_valid.bool().expand_as(x)
    err = (back - x).abs()[mask]
    assert err.max() < 0.02 and err.mean() < 2e-3


@pytest.mark.parametrize('make', RESAMPLING)
def test_augmented_image_is_the_input_moved_by_the_matrix(make):
    transform = make()
    x = _ramp()
    out, _, valid = transform.forward(x, generator=torch.Generator().manual_seed(13))
    u, v = _grid()
    dst = torch.stack([u, v, torch.ones_like(u)], dim=-1).view(-1, 3)
    src = dst @ torch.linalg.inv(transform.warp.matrix).transpose(1, 2)  # (B, N, 3)
    expected = (0.2 + 0.01 * src[..., 0] + 0.02 * src[..., 1]).view(B, 1, H, W).float()
    interior = _inner(valid, 2)
    assert (out - expected).abs()[interior].max() < 1e-5


def test_rotation_leaves_invalid_corners_and_no_rotation_is_identity():
    x = torch.rand(B, 1, H, W)
    out, _, valid = Rotate(max_angle=0.0, prob=1.0).forward(x)
    assert torch.equal(out, x) and bool(valid.all())
    rotate = Rotate(max_angle=45.0, prob=1.0)
    _, _, valid = rotate.forward(x, generator=torch.Generator().manual_seed(1))
    angles = torch.atan2(rotate.warp.matrix[:, 0, 1], rotate.warp.matrix[:, 0, 0]).abs()
    for b in range(B):
        if angles[b] > math.radians(5):
            assert valid[b, 0, 0, 0] == 0 and valid[b, 0, -1, -1] == 0
        assert valid[b, 0, H // 2, W // 2] == 1


def test_chain_marks_content_pushed_out_by_an_earlier_stage_as_invalid():
    # Enlarge x2 and crop, then shrink x0.5 and pad: the composed matrix is a pure shift, but only the part
    # that survived the crop (a quarter of the view) is valid content.
    chain = GeometricChain([ResizeAndCrop(scale=(2.0, 2.0), prob=1.0), ResizeAndPad(scale=(0.5, 0.5), prob=1.0)])
    x = torch.rand(B, 1, H, W)
    _, _, valid = chain.forward(x, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(chain.warp.matrix[:, :2, :2], torch.eye(2, dtype=torch.float64).expand(B, 2, 2))
    assert torch.equal(valid.sum(dim=(1, 2, 3)), torch.full((B,), H * W / 4))


def test_probability_zero_is_the_identity():
    x = torch.rand(B, 3, H, W)
    chain = GeometricChain([HorizontalFlip(prob=0.0), Rotate(30.0, prob=0.0), CropAndPad(prob=0.0),
                            ResizeAndPad(prob=0.0), ResizeAndCrop(prob=0.0)])
    k = _intrinsics().float()
    out, cam2img, valid = chain.forward(x, k)
    assert torch.equal(out, x) and torch.equal(cam2img, k) and bool(valid.all())
    back, back_valid = chain.reverse(out)
    assert torch.equal(back, x) and bool(back_valid.all())


def test_draws_are_reproducible_with_a_generator():
    transform = GeometricChain([HorizontalFlip(), Rotate(30.0, prob=0.5), CropAndPad(), ResizeAndPad()])
    first = transform.sample(8, (H, W), torch.Generator().manual_seed(4)).matrix
    again = transform.sample(8, (H, W), torch.Generator().manual_seed(4)).matrix
    other = transform.sample(8, (H, W), torch.Generator().manual_seed(5)).matrix
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_reverse_before_forward_and_bad_ranges_raise():
    with pytest.raises(RuntimeError, match='before forward'):
        HorizontalFlip().reverse(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match='ResizeAndCrop scale'):
        ResizeAndCrop(scale=(0.9, 1.1))
    with pytest.raises(ValueError, match='CropAndPad scale'):
        CropAndPad(scale=(0.5, 1.2))
    with pytest.raises(ValueError, match='prob'):
        Rotate(prob=1.5)
    warp = HorizontalFlip(prob=1.0).sample(2, (4, 4))
    with pytest.raises(ValueError, match='B=2'):
        warp.apply(torch.zeros(3, 1, 4, 4))


# ---------------------------------------------------------------------------------------------- intrinsics

@pytest.mark.parametrize('make', ALL)
def test_point_projected_with_new_intrinsics_lands_where_its_pixel_moved(make):
    gen = torch.Generator().manual_seed(17)
    warp = make().sample(B, (H, W), gen)
    k = _intrinsics()
    new_k = warp.apply_cam2img(k)
    points = torch.rand(B, 50, 3, dtype=torch.float64, generator=gen) * torch.tensor([8.0, 4.0, 15.0]) \
        + torch.tensor([-4.0, -2.0, 3.0], dtype=torch.float64)
    mirrored = torch.linalg.det(warp.matrix[:, :2, :2]) < 0
    for b in range(B):
        pixels = project_points(points[b], k[b])
        moved = pixels @ warp.matrix[b, :2, :2].T + warp.matrix[b, :2, 2]
        # a flipped image is a view of the scene mirrored in x (structures.camera.flip_cam2img)
        seen = points[b] * torch.tensor([-1.0 if mirrored[b] else 1.0, 1.0, 1.0], dtype=torch.float64)
        torch.testing.assert_close(project_points(seen, new_k[b]), moved, rtol=0, atol=1e-9)
        expected = flip_cam2img(k[b], W) if mirrored[b] else transform_cam2img(k[b], warp.matrix[b])
        torch.testing.assert_close(new_k[b], expected, rtol=0, atol=1e-12)
    if isinstance(make(), HorizontalFlip):
        assert bool(mirrored.all()) and bool((new_k[:, 0, 0] > 0).all())


@pytest.mark.parametrize('make', ALL)
def test_image_content_at_a_points_new_projection_is_its_old_content(make):
    # End to end: the augmented image, sampled where the new intrinsics project a point, shows what the
    # original image showed where the old intrinsics projected it.
    gen = torch.Generator().manual_seed(19)
    transform = make()
    k = _intrinsics().float()
    x = _ramp()
    out, new_k, valid = transform.forward(x, k, gen)
    points = torch.rand(B, 200, 3, generator=gen) * torch.tensor([8.0, 4.0, 15.0]) + torch.tensor([-4.0, -2.0, 3.0])
    mirrored = torch.linalg.det(transform.warp.matrix[:, :2, :2]) < 0
    seen = points.clone()
    seen[mirrored, :, 0] *= -1
    interior = _inner(valid, 2).float()
    checked = 0
    for b in range(B):
        old = project_points(points[b], k[b])
        new = project_points(seen[b], new_k[b])
        grid = torch.stack([(2 * new[:, 0] + 1) / W - 1, (2 * new[:, 1] + 1) / H - 1], dim=-1).view(1, -1, 1, 2)
        value = F.grid_sample(out[b:b + 1], grid, align_corners=False).view(-1)
        inside = F.grid_sample(interior[b:b + 1], grid, mode='nearest', align_corners=False).view(-1) > 0
        inside &= (old[:, 0] >= 0) & (old[:, 0] <= W - 1) & (old[:, 1] >= 0) & (old[:, 1] <= H - 1)
        expected = 0.2 + 0.01 * old[:, 0] + 0.02 * old[:, 1]
        torch.testing.assert_close(value[inside], expected[inside], rtol=0, atol=1e-4)
        checked += int(inside.sum())
    assert checked > 50


# ---------------------------------------------------------------------------------------------- sparse depth

@pytest.mark.parametrize('make', ALL)
def test_sparse_depth_is_resampled_nearest_and_keeps_values_exactly(make):
    gen = torch.Generator().manual_seed(23)
    depth = torch.rand(B, 1, H, W, generator=gen) * 80 + 1
    depth = depth * (torch.rand(B, 1, H, W, generator=gen) < 0.3)  # 30 % of the pixels hold a point
    warp = make().sample(B, (H, W), gen)
    out, valid = warp.apply_sparse(depth, erode_radius=1)
    assert torch.equal(out > 0, valid.bool())
    assert valid.sum() > 0.05 * B * H * W
    # every kept value is a measured one, taken from the nearest source pixel (either one on a tie)
    u, v = _grid()
    dst = torch.stack([u, v, torch.ones_like(u)], dim=-1).view(-1, 3)
    src = (dst @ torch.linalg.inv(warp.matrix).transpose(1, 2))[..., :2]
    low, high = torch.floor(src + 0.5 - 1e-6).long(), torch.ceil(src - 0.5 + 1e-6).long()
    for b in range(B):
        keep = valid[b].view(-1).bool()
        kept = out[b].view(-1)[keep]
        match = torch.zeros_like(kept, dtype=torch.bool)
        for cols in (low[b, keep, 0], high[b, keep, 0]):
            for rows in (low[b, keep, 1], high[b, keep, 1]):
                inside = (cols >= 0) & (cols < W) & (rows >= 0) & (rows < H)
                match |= inside & (depth[b, 0, rows.clamp(0, H - 1), cols.clamp(0, W - 1)] == kept)
        assert bool(match.all())


def test_sparse_validity_is_eroded_next_to_padding():
    gen = torch.Generator().manual_seed(29)
    depth = torch.rand(B, 1, H, W, generator=gen) + 1  # a point at every pixel: validity = eroded region
    crop = CropAndPad(scale=(0.6, 0.8), prob=1.0)
    warp = crop.sample(B, (H, W), gen)
    _, frame_valid = warp.apply(depth)
    for radius in (0, 1, 2):
        _, valid = warp.apply_sparse(depth, erode_radius=radius)
        for b in range(B):
            rows, cols = torch.nonzero(frame_valid[b, 0], as_tuple=True)
            expected = torch.zeros(H, W)
            # the window shrinks by the radius on every side that touches padding, not at the frame's edge
            top = rows.min() + (radius if rows.min() > 0 else 0)
            bottom = rows.max() - (radius if rows.max() < H - 1 else 0)
            left = cols.min() + (radius if cols.min() > 0 else 0)
            right = cols.max() - (radius if cols.max() < W - 1 else 0)
            expected[top:bottom + 1, left:right + 1] = 1
            assert torch.equal(valid[b, 0], expected)


# ---------------------------------------------------------------------------------------------- photometric

def test_photometric_transforms():
    gen = torch.Generator().manual_seed(31)
    x = torch.rand(B, 3, H, W, generator=gen) * 0.8 + 0.1
    torch.testing.assert_close(Brightness((1.2, 1.2), prob=1.0).forward(x), (x * 1.2).clamp(0, 1))
    assert torch.equal(Brightness((0.5, 1.5), prob=0.0).forward(x, gen), x)
    gray = Saturation((0.0, 0.0), prob=1.0).forward(x)
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])
    flat = Contrast((0.0, 0.0), prob=1.0).forward(x)
    assert torch.allclose(flat, flat.mean(dim=(1, 2, 3), keepdim=True).expand_as(flat))
    torch.testing.assert_close(Hue((0.0, 0.0), prob=1.0).forward(x), x)
    muted = 0.4 + 0.2 * x  # colours that stay in gamut when turned, so no clamping
    turned = Hue((0.1, 0.1), prob=1.0).forward(muted)
    assert not torch.allclose(turned, muted)
    luma = muted.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    torch.testing.assert_close((turned * luma).sum(1), (muted * luma).sum(1))  # a hue turn keeps the luma
    torch.testing.assert_close(Gamma((2.0, 2.0), prob=1.0, max_value=255.0).forward(x * 255), 255 * x ** 2)
    factors = Brightness((0.5, 1.5), prob=0.5).sample(64, torch.Generator().manual_seed(0))
    assert ((factors == 1.0) | ((factors >= 0.5) & (factors < 1.5))).all() and (factors == 1.0).any()
    with pytest.raises(ValueError, match='RGB'):
        Saturation((0.5, 1.5)).forward(torch.rand(1, 1, 4, 4))


# ---------------------------------------------------------------------------------------------- the wrapper

class ToyDepth(BaseModel):
    """A 2-layer conv depth completion net (image + sparse depth -> disparity at 2 scales) with an L1 loss
    against a target disparity, following AugUndo's interface."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 1, 3, padding=1)
        self.seen = None

    def extract(self, inputs):
        self.seen = inputs
        x = torch.cat([inputs['img'], inputs['sparse_depth'] / 10], dim=1)
        disp = torch.sigmoid(self.conv2(F.relu(self.conv1(x))))
        return dict(disp=[disp, F.avg_pool2d(disp, 2)])

    def loss_by_outputs(self, outputs, inputs, data_samples=None, valid=None):
        losses = {}
        for scale, disp in enumerate(outputs['disp']):
            err = (disp - F.avg_pool2d(inputs['target'], 2 ** scale)).abs()
            if valid is None:
                losses[f'loss_disp_{scale}'] = err.mean()
            else:
                mask = valid['disp'][scale]
                losses[f'loss_disp_{scale}'] = (err * mask).sum() / mask.sum().clamp(min=1)
        return losses

    def loss(self, inputs, data_samples=None):
        return self.loss_by_outputs(self.extract(inputs), inputs, data_samples)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self.extract(inputs)['disp'][0]


def _batch(seed=0, batch=2, height=16, width=24):
    gen = torch.Generator().manual_seed(seed)
    img = _smooth(batch, height, width)
    img = (img + 0.05 * torch.rand(img.shape, generator=gen)).clamp(0, 1)
    sparse = (torch.rand(batch, 1, height, width, generator=gen) * 20 + 1) \
        * (torch.rand(batch, 1, height, width, generator=gen) < 0.2)
    k = _intrinsics(batch).float()[:, :, :3]
    return dict(img=img, sparse_depth=sparse, cam2img=k, target=img[:, :1].clone())


def _wrapper(model, **kwargs):
    cfg = dict(type='AugUndo', model=model, sparse_keys=('sparse_depth',), **kwargs)
    return MODELS.build(cfg)


ALL_AUG = dict(
    geometric=[dict(type='HorizontalFlip', prob=0.5),
               dict(type='ResizeAndCrop', scale=(1.0, 1.2), prob=0.5),
               dict(type='CropAndPad', scale=(0.8, 1.0), prob=0.5),
               dict(type='ResizeAndPad', scale=(0.7, 1.0), prob=0.5),
               dict(type='Rotate', max_angle=20.0, prob=0.5)],
    photometric=[dict(type='Brightness', factor=(0.8, 1.2)), dict(type='Contrast', factor=(0.8, 1.2)),
                 dict(type='Saturation', factor=(0.8, 1.2)), dict(type='Hue', factor=(-0.05, 0.05))],
    sparse_drop=(0.6, 0.7))


def test_wrapper_loss_equals_the_plain_loss_without_augmentation():
    torch.manual_seed(0)
    model = ToyDepth()
    inputs = _batch()
    plain = model.loss(inputs)
    names = ('HorizontalFlip', 'Rotate', 'CropAndPad', 'ResizeAndPad', 'ResizeAndCrop')
    disabled = dict(geometric=[dict(type=name, prob=0.0) for name in names],
                    photometric=[dict(type='Brightness', factor=(0.5, 1.5), prob=0.0)])
    for kwargs in (dict(), disabled):
        wrapped = _wrapper(model, **kwargs).loss(inputs)
        assert wrapped.keys() == plain.keys()
        for key in plain:
            torch.testing.assert_close(wrapped[key], plain[key], rtol=1e-6, atol=1e-7)


def test_network_sees_augmented_inputs_and_loss_sees_the_original_frame():
    model = ToyDepth()
    inputs = _batch()
    wrapper = _wrapper(model, geometric=[dict(type='HorizontalFlip', prob=1.0)],
                       photometric=[dict(type='Brightness', factor=(1.3, 1.3), prob=1.0)])
    losses = wrapper.loss(inputs)
    seen = model.seen
    torch.testing.assert_close(seen['img'], (inputs['img'].flip(-1) * 1.3).clamp(0, 1))
    assert torch.equal(seen['sparse_depth'] > 0, (inputs['sparse_depth'].flip(-1) > 0))
    assert seen['target'] is inputs['target']  # loss-only entries pass untouched
    torch.testing.assert_close(seen['cam2img'][:, 0, 2], inputs['img'].shape[-1] - 1 - inputs['cam2img'][:, 0, 2])
    # the flip is undone exactly, so the loss is the plain loss of the flipped-input prediction flipped back
    with torch.no_grad():
        pred = model.extract(dict(seen))['disp']
    expected = model.loss_by_outputs(dict(disp=[p.flip(-1) for p in pred]), inputs)
    for key in expected:
        torch.testing.assert_close(losses[key], expected[key])


def test_undone_outputs_come_with_validity_per_scale():
    model = ToyDepth()
    wrapper = _wrapper(model, geometric=[dict(type='ResizeAndPad', scale=(0.6, 0.6), prob=1.0)], seed=0)
    inputs = _batch()
    augmented, warp = wrapper.augment(inputs)
    outputs, valid = wrapper.undo(model.extract(augmented), warp)
    for disp, mask in zip(outputs['disp'], valid['disp']):
        assert mask.shape == (2, 1) + disp.shape[-2:]
        assert bool(mask.all())  # a shrunk image still covers the whole original view
    _, aug_valid = warp.apply(inputs['img'])
    assert aug_valid.mean() < 0.5  # ... while most of the network's input is padding


def test_wrapper_is_reproducible_with_a_seed():
    inputs = _batch()
    first = _wrapper(ToyDepth(), seed=3, **ALL_AUG).augment(inputs)[0]
    again = _wrapper(ToyDepth(), seed=3, **ALL_AUG).augment(inputs)[0]
    other = _wrapper(ToyDepth(), seed=4, **ALL_AUG).augment(inputs)[0]
    for key in ('img', 'sparse_depth', 'cam2img'):
        assert torch.equal(first[key], again[key])
    assert not torch.equal(first['img'], other['img'])


def test_gradients_flow_to_the_wrapped_model():
    torch.manual_seed(0)
    model = ToyDepth()
    wrapper = _wrapper(model, seed=0, **ALL_AUG)
    losses = wrapper(_batch(), mode='loss')
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0, name


def test_short_overfit_with_the_wrapper():
    torch.manual_seed(0)
    model = ToyDepth()
    wrapper = _wrapper(model, seed=0, **ALL_AUG)
    inputs = _batch()
    optimizer = torch.optim.Adam(wrapper.parameters(), lr=0.01)
    history = []
    for _ in range(100):
        loss = sum(wrapper.loss(inputs).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    start, end = sum(history[:5]) / 5, sum(history[-10:]) / 10
    assert end < 0.35 * start, (start, end)


def test_mmengine_train_step_runs_through_the_wrapper():
    torch.manual_seed(0)
    model = ToyDepth()
    wrapper = _wrapper(model, seed=0, **ALL_AUG)
    optim_wrapper = OptimWrapper(torch.optim.SGD(wrapper.parameters(), lr=0.1))
    before = model.conv2.weight.detach().clone()
    log_vars = wrapper.train_step(dict(inputs=_batch()), optim_wrapper)
    assert {'loss', 'loss_disp_0', 'loss_disp_1'} <= set(log_vars)
    assert not torch.equal(model.conv2.weight, before)


def test_predict_and_tensor_pass_through_without_augmentation():
    model = ToyDepth()
    wrapper = _wrapper(model, geometric=[dict(type='HorizontalFlip', prob=1.0)],
                       photometric=[dict(type='Brightness', factor=(2.0, 2.0), prob=1.0)])
    inputs = _batch()
    expected = model(inputs, mode='predict')
    assert torch.equal(wrapper(inputs, mode='predict'), expected)
    assert torch.equal(wrapper(inputs, mode='tensor'), expected)
    assert wrapper.data_preprocessor is model.data_preprocessor
    with pytest.raises(RuntimeError, match='invalid mode'):
        wrapper(inputs, mode='train')


def test_wrapper_rejects_bad_configs():
    with pytest.raises(TypeError, match='expected a GeometricTransform'):
        _wrapper(ToyDepth(), geometric=[dict(type='Brightness', factor=(0.5, 1.5))])
    with pytest.raises(KeyError, match='Blur is not in the .*batch augment registry'):
        _wrapper(ToyDepth(), photometric=[dict(type='Blur')])
    with pytest.raises(TypeError, match='extract'):
        AugUndo(model=nn.Conv2d(3, 1, 1))
    model = ToyDepth()
    wrapper = _wrapper(model, geometric=[dict(type='HorizontalFlip', prob=1.0)], undo_keys=('depth',))
    with pytest.raises(KeyError, match="no 'depth' to undo"):
        wrapper.loss(_batch())


def test_transforms_build_from_their_registry():
    rotate = BATCH_AUGMENTS.build(dict(type='Rotate', max_angle=10., prob=1.0))
    assert type(rotate) is Rotate and (rotate.max_angle, rotate.prob) == (10., 1.)
    assert type(BATCH_AUGMENTS.build(dict(type='Gamma', factor=(0.9, 1.1)))) is Gamma


def test_warp_needs_a_stage():
    with pytest.raises(ValueError, match='at least one stage'):
        Warp([], (H, W))


def test_views_of_a_sample_get_the_same_augmentation():
    """(B, V, 3, H, W) stereo views move and change together, exactly as a single view would."""
    img = _batch()['img']
    views = torch.stack([img, img.flip(-1)], dim=1)
    kwargs = dict(model=ToyDepth(), image_keys=('img', ), intrinsics_key=None, seed=0, **{
        k: v for k, v in ALL_AUG.items() if k != 'sparse_drop'})
    single = MODELS.build(dict(type='AugUndo', **kwargs)).augment(dict(img=img))[0]['img']
    stacked = MODELS.build(dict(type='AugUndo', **kwargs)).augment(dict(img=views))[0]['img']
    assert stacked.shape == views.shape
    torch.testing.assert_close(stacked[:, 0], single)
    assert not torch.allclose(stacked[:, 1], single)
    mirrored = MODELS.build(dict(type='AugUndo', **kwargs)).augment(dict(img=img.flip(-1)))[0]['img']
    torch.testing.assert_close(stacked[:, 1], mirrored)
