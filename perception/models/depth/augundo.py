"""AugUndo (Wu, Yang, Zhang, Shi, Su, Yang, Wong: "AugUndo: Scaling Up Augmentations for Monocular Depth
Completion and Estimation", ECCV 2024).

Idea: augment only what the network sees, then undo the geometric augmentation on its output, so that
the (self-)supervised loss is computed in the original frame with the original images, sparse depth and
intrinsics. Augmentations that would corrupt a photometric reconstruction loss (large rotations,
resizing, crop and pad) become usable, because the loss never sees the augmented images.

Here ``d = T_g^-1(f(T_p(T_g(I)), T_g(z), T_g(K)))`` (the "undo" step of the paper's training loop):
``T_g`` is a chain of per-sample random pixel affines that keep the frame size, composed into one
:class:`~perception.models.depth.batch_warp.Warp` so that each tensor is resampled once; ``T_p`` are
photometric jitters of the network's image only (both kinds in :mod:`perception.models.depth.batch_augments`);
:class:`AugUndo` wraps any depth model that follows the small interface described there.

Differences from the official release (alexklwong/augundo, depth-completion code), on purpose:
the image is resampled bilinearly (the release uses nearest for every input); the intrinsics follow every
geometric transform (the release rescales them for resizes only); rotation keeps the frame size and marks
the corners as invalid (the release rotates with ``expand=True`` and crops back on undo); the undone
prediction comes with a validity mask for pixels whose content came from padding or from outside the frame.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.dist import get_rank
from mmengine.model import BaseModel
from torch import Tensor

from perception.registry import BATCH_AUGMENTS, MODELS
from .batch_augments import GeometricChain, GeometricTransform, PhotometricTransform, check_range, rand_per_sample
from .batch_warp import Warp


def _build(cfg: Union[dict, GeometricTransform, PhotometricTransform], base: type):
    transform = BATCH_AUGMENTS.build(cfg) if isinstance(cfg, dict) else cfg
    if not isinstance(transform, base):
        raise TypeError(f'expected a {base.__name__} or its config dict, got {type(transform).__name__}')
    return transform


@MODELS.register_module()
class AugUndo(BaseModel):
    """Train any depth model with AugUndo: augment its inputs, undo the geometry on its outputs, and let its own
    loss run in the original frame.

    The wrapped model provides (beside its ``data_preprocessor``, which the wrapper adopts):

    - ``extract(inputs) -> dict``: the network's forward pass on a dict of batched tensors; the entries named
      in ``undo_keys`` are maps in the input frame, each a (B, C, h, w) tensor or a list of them (one per
      decoder scale, any resolution over the same view: disparity, depth, bin logits ...). Other entries pass
      through untouched, so anything that must see the original frame (a pose network on the original frames,
      a teacher) belongs in the loss.
    - ``loss_by_outputs(outputs, inputs, data_samples, valid) -> dict``: its loss, given outputs in the frame
      of ``inputs``. ``valid`` is None for a plain (un-augmented) call; from the wrapper it holds, for each
      undone entry, the same structure of (B, 1, h, w) 0/1 masks (0 where the pixel came from padding or from
      outside the augmented frame), which the loss should apply. A plain ``loss(inputs, data_samples)`` is
      then ``loss_by_outputs(extract(inputs), inputs, data_samples, None)``.
    - ``forward(inputs, data_samples, mode)`` for 'predict' and 'tensor', which the wrapper passes through
      without augmentation.

    Intrinsics are read from and written to ``inputs[intrinsics_key]`` (a model that reads them from the
    data samples' metainfo sees the original ones). The wrapper's state dict holds the model under ``model.``.

    Args:
        model: the depth model or its config.
        geometric: geometric transforms of :mod:`.batch_augments` (or their ``BATCH_AUGMENTS`` configs, e.g.
            ``dict(type='Rotate', max_angle=30)``), applied in order with the same parameters to every image,
            sparse map and intrinsics of a sample.
        photometric: photometric transforms (configs), applied in order to the images in ``image_keys``.
        image_keys: inputs the network sees as images, (B, 3, H, W) or views (B, V, 3, H, W) that get the same
            augmentation: warped bilinearly with edge padding, then jittered.
        sparse_keys: sparse depth inputs (0 = no point): warped nearest-neighbour, 0 outside the eroded valid
            region (a model derives its validity map from ``> 0``).
        intrinsics_key: the (B, 3|4, 3|4) projection matrices in ``inputs``; ignored when absent.
        undo_keys: entries of ``extract``'s outputs to bring back to the original frame.
        undo_mode: interpolation of the undo, 'bilinear' or 'nearest' (the release's).
        sparse_erode: erosion radius, in pixels, of the sparse maps' valid region.
        sparse_drop: (min, max) fraction of the sparse points removed per sample (the release: 0.6-0.7), or None.
        pixel_mean, pixel_std: per-channel normalisation of the images; the photometric transforms work on
            ``img * std + mean`` and the result is normalised again. None: images are already in their range.
        seed: seeds the wrapper's own random generator (plus the process rank) for reproducible draws;
            None uses torch's global generator (seeded by the runner).
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 model: Union[dict, nn.Module],
                 geometric: Sequence[Union[dict, GeometricTransform]] = (),
                 photometric: Sequence[Union[dict, PhotometricTransform]] = (),
                 image_keys: Sequence[str] = ('img',),
                 sparse_keys: Sequence[str] = (),
                 intrinsics_key: Optional[str] = 'cam2img',
                 undo_keys: Sequence[str] = ('disp',),
                 undo_mode: str = 'bilinear',
                 sparse_erode: int = 1,
                 sparse_drop: Optional[Sequence[float]] = None,
                 pixel_mean: Optional[Sequence[float]] = None,
                 pixel_std: Optional[Sequence[float]] = None,
                 seed: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.model = MODELS.build(model) if isinstance(model, dict) else model
        missing = [name for name in ('extract', 'loss_by_outputs') if not callable(getattr(self.model, name, None))]
        if missing:
            raise TypeError(f'AugUndo needs a depth model with {missing} (see the AugUndo docstring); '
                            f'{type(self.model).__name__} has none')
        if isinstance(getattr(self.model, 'data_preprocessor', None), nn.Module):
            self.data_preprocessor = self.model.data_preprocessor
        self.geometric = GeometricChain([_build(t, GeometricTransform) for t in geometric])
        self.photometric = [_build(t, PhotometricTransform) for t in photometric]
        if not image_keys:
            raise ValueError('image_keys must name at least one input')
        if undo_mode not in ('bilinear', 'nearest'):
            raise ValueError(f"undo_mode must be 'bilinear' or 'nearest', got {undo_mode!r}")
        if (pixel_mean is None) != (pixel_std is None):
            raise ValueError('give both pixel_mean and pixel_std, or neither')
        self.image_keys = tuple(image_keys)
        self.sparse_keys = tuple(sparse_keys)
        self.intrinsics_key = intrinsics_key
        self.undo_keys = tuple(undo_keys)
        self.undo_mode = undo_mode
        self.sparse_erode = int(sparse_erode)
        self.sparse_drop = None if sparse_drop is None else check_range('sparse_drop', sparse_drop, 0.0, 1.0)
        self.pixel_mean = None if pixel_mean is None else tuple(float(v) for v in pixel_mean)
        self.pixel_std = None if pixel_std is None else tuple(float(v) for v in pixel_std)
        self.seed = seed
        self._generator: Optional[torch.Generator] = None

    def generator(self, device: torch.device) -> Optional[torch.Generator]:
        """The wrapper's generator on ``device`` (None without a seed); made afresh when the device changes."""
        if self.seed is None:
            return None
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed + get_rank())
        return self._generator

    def _jitter(self, img: Tensor, factors: List[Tensor]) -> Tensor:
        if img.dim() == 5:  # the views of a sample share its jitter
            views = img.shape[1]
            flat = self._jitter(img.flatten(0, 1), [f.repeat_interleave(views, 0) for f in factors])
            return flat.unflatten(0, (-1, views))
        if self.pixel_mean is not None:
            mean = img.new_tensor(self.pixel_mean).view(1, -1, 1, 1)
            std = img.new_tensor(self.pixel_std).view(1, -1, 1, 1)
            img = img * std + mean
        for transform, factor in zip(self.photometric, factors):
            img = transform.apply(img, factor)
        if self.pixel_mean is not None:
            img = (img - mean) / std
        return img

    def augment(self, inputs: Dict[str, Tensor]) -> Tuple[Dict[str, Tensor], Optional[Warp]]:
        """The network's inputs for one training step and the warp that made them (None without geometry).

        Args:
            inputs: batched tensors in the original frame; entries not named by the wrapper are passed on.
        """
        first = inputs[self.image_keys[0]]
        batch, device = first.shape[0], first.device
        generator = self.generator(device)
        warp = None
        if self.geometric.transforms:
            warp = self.geometric.sample(batch, tuple(first.shape[-2:]), generator, device)
        factors = [t.sample(batch, generator, device) for t in self.photometric]
        augmented = dict(inputs)
        for key in self.image_keys:
            img = inputs[key]
            if warp is not None:
                # (B, V, 3, H, W) views of a sample (a stereo pair) move together
                flat, _ = warp.apply(img.flatten(1, 2) if img.dim() == 5 else img, 'bilinear', 'border')
                img = flat.view_as(img)
            augmented[key] = self._jitter(img, factors) if self.photometric else img
        for key in self.sparse_keys:
            depth = inputs[key]
            if warp is not None:
                depth, _ = warp.apply_sparse(depth, self.sparse_erode)
            if self.sparse_drop is not None:
                lo, hi = self.sparse_drop
                fraction = (lo + (hi - lo) * rand_per_sample(batch, generator, device)).view(-1, 1, 1, 1)
                draws = torch.rand(depth.shape, dtype=torch.float64, generator=generator,
                                   device=device if generator is None else generator.device).to(device)
                depth = depth * (draws >= fraction).to(depth.dtype)
            augmented[key] = depth
        if warp is not None and self.intrinsics_key is not None and self.intrinsics_key in inputs:
            augmented[self.intrinsics_key] = warp.apply_cam2img(inputs[self.intrinsics_key])
        return augmented, warp

    def undo(self, outputs: dict, warp: Warp) -> Tuple[dict, Dict[str, Union[Tensor, List[Tensor]]]]:
        """Bring the ``undo_keys`` entries of ``outputs`` back to the original frame, with their validity."""
        outputs, valid = dict(outputs), {}
        for key in self.undo_keys:
            if key not in outputs:
                raise KeyError(f'the model outputs have no {key!r} to undo (they have {sorted(outputs)})')
            value = outputs[key]
            if isinstance(value, Tensor):
                outputs[key], valid[key] = warp.reverse(value, self.undo_mode)
            else:
                pairs = [warp.reverse(v, self.undo_mode) for v in value]
                outputs[key], valid[key] = [p[0] for p in pairs], [p[1] for p in pairs]
        return outputs, valid

    def loss(self, inputs: Dict[str, Tensor], data_samples=None) -> Dict[str, Tensor]:
        """Augment, run the model, undo, and return the model's loss in the original frame."""
        augmented, warp = self.augment(inputs)
        outputs = self.model.extract(augmented)
        valid = None
        if warp is not None:
            outputs, valid = self.undo(outputs, warp)
        return self.model.loss_by_outputs(outputs, inputs, data_samples, valid)

    def forward(self, inputs: Dict[str, Tensor], data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode in ('predict', 'tensor'):
            return self.model(inputs, data_samples, mode=mode)
        raise RuntimeError(f'invalid mode {mode!r}: expected loss, predict or tensor')
