"""DepthMaster (Song, Wang et al.: "DepthMaster: Taming Diffusion Models for Monocular Depth Estimation",
arXiv 2501.02576, TCSVT 2026).

Idea: Stable Diffusion 2 turned into a one-step deterministic depth estimator. The UNet maps the VAE latent of
the image to the latent of its depth at the timestep t = 1, with the empty-text embedding; the decoded latent,
averaged over its 3 channels and clipped to [-1, 1], is an affine-invariant **square-root disparity**. Two
training stages (official code: indu1ge/DepthMaster, Marigold-based):

- stage 1 (``train_stage=1``, ``src/trainer/trainer_s1.py``): MSE between the predicted and the ground-truth
  depth latents on the latent cells whose 8 x 8 pixels all have depth, plus the **Feature Alignment** loss
  ``KL(softmax(z_ext) || softmax(MLP(f_mid)))`` (:func:`feature_alignment_kl`) between the UNet mid-block
  features, projected by an MLP (1280 -> 1536 -> 1536 -> token width, SiLU), and the patch tokens of a frozen
  external image encoder resized bicubically to the mid-block grid (DINOv2-G officially, which is not released:
  here any registered image model given by the config, with its token width);
- stage 2 (``train_stage=2``, ``src/trainer/trainer_s2.py``): the **Fourier Enhancement** block
  (:class:`FourierEnhancementBlock`, ``depthmaster/modules/unet_2d_blocks.py::BlockFE``) after the mid-block, and
  pixel-space losses on the decoded prediction (channel mean, not clipped): MSE on the valid pixels plus
  ``1e-3 x`` a Huber term between the 4-direction finite differences of target and prediction
  (:func:`gradient_huber_loss`);
- stage 0 (``train_stage=0``, not in the official code, which starts from SD2): the VAE alone learns to
  reconstruct images and targets, for a model trained from scratch (the tiny CPU one).

Targets (:func:`sqrt_disparity_target`, ``src/dataset/base_depth_dataset.py``): depth -> disparity -> square
root, normalised per image to [-1, 1] between its 2 % and 98 % quantiles, repeated over 3 channels for the VAE.

The Fourier block is not a copy of the official UNet: diffusers' ``UNet2DConditionModel`` is used as it is, the
block is attached as ``unet.fftblock`` (the official parameter names, so that the official ``unet/`` folder
loads as it is) and applied by a forward hook on ``unet.mid_block``, whose output it replaces (no outer
residual). The same hook keeps the mid-block output for the Feature Alignment loss.

Departures from the official code, each documented where it lives:
- the official "Huber" is not the standard Huber: its quadratic and linear regimes are swapped (0.5 e^2 where
  |e| > delta, delta |e| + 0.5 delta^2 where |e| <= delta). ``huber='official'`` (default) keeps it,
  ``huber='standard'`` is ``F.huber_loss``;
- the official external encoder reads the ImageNet-normalised image in [-1, 1] (not [0, 1]);
  ``align_official_input=True`` (default) keeps it;
- the empty-text embedding is the CLIP text encoder's output for the token ids of ``<|startoftext|>`` and
  ``<|endoftext|>`` (what the official tokenizer gives for "" without padding), looked up in the tokenizer's
  ``vocab.json``, so no tokenizer class is needed (the ids in SD2's text-encoder config are not CLIP's).

Outputs: ``pred_sqrt_disparity`` (the official ``depth_np``: relative square-root disparity in [0, 1], larger is
nearer; evaluate it with ``DepthMetric(scaling='lsq-sqrt-disparity', pred_is_disparity=True,
pred_key='pred_sqrt_disparity')``) and ``pred_depth``, a relative depth for display and video,
``1 / (s + relative_depth_offset)^2`` (monotone in depth, but not affine-related to it).
"""
import json
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement, PixelData
from torch import Tensor, nn

from perception.fileio import InvalidInputError
from perception.registry import MODELS

from .local_weights import load_folder, read_embedding

HUBER_MODES = ('official', 'standard')
# ImageNet statistics the official code normalises the external encoder's input with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------------------------------------------
# targets and losses
def sqrt_disparity_target(depth: Tensor, valid: Tensor, quantile: float = 0.02) -> Tensor:
    """(B, H, W) square-root disparity normalised per image to [-1, 1]: ``sqrt(1 / depth)`` mapped linearly from
    its ``quantile`` / ``1 - quantile`` quantiles over the valid pixels to -1 / 1 and clipped; -1 (the far end)
    where ``valid`` is False."""
    out = torch.full_like(depth, -1.)
    for i in range(len(depth)):
        if not valid[i].any():
            raise InvalidInputError(f'image {i} of the batch has no valid depth')
        sqrt_disp = depth[i][valid[i]].float().reciprocal().sqrt()
        low, high = torch.quantile(sqrt_disp, sqrt_disp.new_tensor([quantile, 1 - quantile]))
        norm = ((sqrt_disp - low) / (high - low).clamp_min(1e-6) * 2 - 1).clamp(-1, 1)
        out[i][valid[i]] = norm.to(out.dtype)
    return out


def latent_valid_mask(valid: Tensor, factor: int = 8) -> Tensor:
    """(B, H / factor, W / factor) cells of the latent grid whose ``factor`` x ``factor`` pixels are all valid (the
    official max-pooling of the invalid mask)."""
    return ~F.max_pool2d((~valid)[:, None].float(), factor, factor)[:, 0].bool()


def feature_alignment_kl(projected: Tensor, target: Tensor) -> Tensor:
    """``KL(softmax(target) || softmax(projected))`` over the last (channel) dimension, averaged over all
    elements as ``F.kl_div(log_softmax(projected), softmax(target))`` with ``reduction='mean'`` (official)."""
    kl = F.kl_div(F.log_softmax(projected, dim=-1), F.softmax(target, dim=-1), reduction='sum')
    return kl / target.numel()


def huber(error: Tensor, delta: float, mode: str = 'official') -> Tensor:
    """Element-wise Huber of ``error``: ``'standard'`` 0.5 e^2 for |e| <= delta, delta (|e| - delta / 2) beyond;
    ``'official'`` the official code's swapped regimes, 0.5 e^2 for |e| > delta, delta |e| + delta^2 / 2 within."""
    if mode not in HUBER_MODES:
        raise ValueError(f'huber mode must be one of {HUBER_MODES}, got {mode!r}')
    abs_error = error.abs()
    if mode == 'standard':
        return F.huber_loss(error, torch.zeros_like(error), reduction='none', delta=delta)
    return torch.where(abs_error > delta, 0.5 * error**2, delta * abs_error + 0.5 * delta**2)


def finite_differences(x: Tensor) -> Tensor:
    """(B, 4, H - 1, W - 1) differences of a (B, 1, H, W) map in 4 directions: horizontal, vertical and the two
    diagonals (official ``trainer_s2.py::grad``)."""
    return torch.cat([
        x[..., 1:, 1:] - x[..., 1:, :-1],
        x[..., 1:, 1:] - x[..., :-1, 1:],
        x[..., :-1, 1:] - x[..., 1:, :-1],
        x[..., 1:, 1:] - x[..., :-1, :-1],
    ], dim=1)


def gradient_huber_loss(pred: Tensor, target: Tensor, valid: Tensor, delta: float = 0.2,
                        mode: str = 'official') -> Tensor:
    """Mean Huber of ``grad(target) - grad(pred)`` over all elements, both (B, 1, H, W) maps set to 0 where not
    ``valid`` first."""
    mask = valid.to(pred.dtype)
    return huber(finite_differences(target * mask) - finite_differences(pred * mask), delta, mode).mean()


# ----------------------------------------------------------------------------------------------------------------
# the Fourier enhancement block
class FourierEnhancementBlock(nn.Module):
    """DepthMaster's Fourier Enhancement block (``BlockFE``): (B, C, H, W) -> (B, C, H, W).

    ``x = GN(x)``; frequency branch ``x_f0 = SiLU(conv3(x))``, ``X = rfft2(x_f0, norm='ortho')``, amplitude and
    phase each through ``SiLU(conv3(.))``, ``x_f = conv1(irfft2(|X| e^{i angle X}, s=(H, W), norm='ortho') + x_f0)``;
    spatial branch ``x_s = conv3(SiLU(conv3(x))) + x``; output ``conv1([x_s, x_f])``. Parameter names are the
    official ones.
    """

    def __init__(self, channels: int = 1280, groups: int = 8) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.conv_f1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv_f2 = nn.Conv2d(channels, channels, 3, padding=1)  # amplitude
        self.conv_f4 = nn.Conv2d(channels, channels, 3, padding=1)  # phase
        self.conv_f3 = nn.Conv2d(channels, channels, 1)
        self.conv_s1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv_s2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.fuse = nn.Conv2d(2 * channels, channels, 1)

    def frequency(self, x: Tensor) -> Tensor:
        """The frequency branch before its 1x1 convolution."""
        x_f0 = F.silu(self.conv_f1(x))
        spectrum = torch.fft.rfft2(x_f0, norm='ortho')
        amplitude = F.silu(self.conv_f2(spectrum.abs()))
        phase = F.silu(self.conv_f4(spectrum.angle()))
        return torch.fft.irfft2(torch.polar(amplitude, phase), s=x.shape[-2:], norm='ortho') + x_f0

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(x)
        spatial = self.conv_s2(F.silu(self.conv_s1(x))) + x
        return self.fuse(torch.cat([spatial, self.conv_f3(self.frequency(x))], dim=1))


def depthmaster_input_size(height: int, width: int, processing_res: int = 0) -> Tuple[int, int]:
    """(h, w) the network runs at: the long side scaled to ``processing_res`` (0: the frame's own size), each
    side rounded to a multiple of 8 (the VAE's stride)."""
    scale = processing_res / max(height, width) if processing_res > 0 else 1.
    h, w = round(height * scale / 8) * 8, round(width * scale / 8) * 8
    if h == 0 or w == 0:
        raise ValueError(f'images of {height}x{width} round to {h}x{w}: DepthMaster needs sides of at least 4 px')
    return h, w


@MODELS.register_module()
class DepthMaster(BaseModel):
    """DepthMaster: single-step diffusion depth (see the module docstring).

    Inputs: ``inputs['imgs']`` (B, 3, H, W) RGB in [0, 1] (uint8 is divided by 255); for training each data sample
    carries ``gt_depth`` (H0, W0) in metres (<= 0 or not finite: no data), resized to (H, W) by nearest
    neighbour (the pipeline must not crop or flip).

    Args:
        unet: keyword arguments of diffusers' ``UNet2DConditionModel`` (4 input and output channels).
        vae: keyword arguments of ``AutoencoderKL`` (``scaling_factor`` 0.18215 for SD2).
        text_embed_len: tokens of the empty-text embedding (2: [BOS, EOS], unpadded as the official code).
        text_embed_file: ``.npy`` (L, D) or (1, L, D) empty-text embedding, used when no CLIP text encoder is
            loaded (a checkpoint of this model carries it as the ``text_embedding`` buffer anyway).
        official_dir: local folder of the official release in the Marigold pipeline layout, loaded at build time
            (see :meth:`load_official`).
        init_from: a checkpoint of this model (stage 1) whose UNet, VAE and text embedding start stage 2: every
            weight but the Fourier block's must be there.
        train_stage: 1 (latent MSE + feature alignment) or 2 (pixel losses); 0 trains only the VAE to
            reconstruct images and targets (a model trained from scratch, as the tiny one; SD2's VAE is frozen).
        vae_kl_weight: weight of the VAE's KL term in stage 0.
        fourier_block: insert the Fourier enhancement block after the mid-block (stage 2 and the release).
        fourier_groups: its GroupNorm groups (8).
        align_encoder: config of the frozen external encoder of stage 1 (any registered image model returning a
            (B, C, h, w) map or a tuple of them), None: no feature alignment.
        align_dim: its token width C; align_out_index: which output of a tuple.
        align_proj_dim: hidden width of the projection MLP (1536).
        align_weight: weight of the feature alignment loss (1).
        align_input_scale: the encoder's input is the image resized by this factor, bicubic (0.875).
        align_official_input: ImageNet-normalise the image in [-1, 1] (official) instead of [0, 1].
        quantile: the normalisation quantile of the target (0.02).
        grad_weight, grad_delta, huber: the stage-2 gradient term (1e-3, 0.2, ``'official'``).
        processing_res: inference resolution of the long side (0: native, the benchmark setting; 768 in the wild).
        relative_depth_offset: offset of the display depth ``pred_depth`` (see the module docstring).
    """

    video_window = (1, 1, 0)
    video_metric = False

    def __init__(self,
                 unet: dict,
                 vae: dict,
                 text_embed_len: int = 2,
                 text_embed_file: Optional[str] = None,
                 official_dir: Optional[str] = None,
                 init_from: Optional[str] = None,
                 train_stage: int = 1,
                 fourier_block: bool = False,
                 fourier_groups: int = 8,
                 align_encoder: Optional[dict] = None,
                 align_dim: int = 1536,
                 align_out_index: int = -1,
                 align_proj_dim: int = 1536,
                 align_weight: float = 1.,
                 align_input_scale: float = 0.875,
                 align_official_input: bool = True,
                 quantile: float = 0.02,
                 grad_weight: float = 1e-3,
                 grad_delta: float = 0.2,
                 huber: str = 'official',
                 vae_kl_weight: float = 1e-6,
                 processing_res: int = 0,
                 relative_depth_offset: float = 0.1,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if train_stage not in (0, 1, 2):
            raise ValueError(f'train_stage must be 0, 1 or 2, got {train_stage!r}')
        if huber not in HUBER_MODES:
            raise ValueError(f'huber must be one of {HUBER_MODES}, got {huber!r}')
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from diffusers.models.attention_processor import AttnProcessor2_0
        self.unet = UNet2DConditionModel(**unet)
        self.vae = AutoencoderKL(**vae)
        # scaled_dot_product_attention everywhere (the official trainers ask for xformers).
        self.unet.set_attn_processor(AttnProcessor2_0())
        self.vae.set_attn_processor(AttnProcessor2_0())
        self.vae.requires_grad_(train_stage == 0)
        mid_channels = self.unet.config.block_out_channels[-1]
        if fourier_block:
            self.unet.fftblock = FourierEnhancementBlock(mid_channels, fourier_groups)
        self._mid_features: Optional[Tensor] = None
        self.unet.mid_block.register_forward_hook(self._mid_block_hook)
        self.unet.requires_grad_(train_stage != 0)
        self.register_buffer('text_embedding', torch.zeros(1, text_embed_len, self.unet.config.cross_attention_dim))
        self.train_stage, self.quantile = train_stage, quantile
        self.grad_weight, self.grad_delta, self.huber = grad_weight, grad_delta, huber
        self.vae_kl_weight = vae_kl_weight
        self.processing_res, self.relative_depth_offset = processing_res, relative_depth_offset
        self.align_encoder = None
        if align_encoder is not None and train_stage == 1:
            self.align_encoder = MODELS.build(align_encoder)
            self.align_encoder.requires_grad_(False)
            self.align_projector = nn.Sequential(
                nn.Linear(mid_channels, align_proj_dim), nn.SiLU(), nn.Linear(align_proj_dim, align_proj_dim),
                nn.SiLU(), nn.Linear(align_proj_dim, align_dim))
        self.align_dim, self.align_out_index, self.align_weight = align_dim, align_out_index, align_weight
        self.align_input_scale, self.align_official_input = align_input_scale, align_official_input
        if text_embed_file is not None:
            self.load_text_embedding(text_embed_file)
        if official_dir is not None:
            self.load_official(official_dir)
        if init_from is not None:
            self.load_stage1(init_from)

    def _mid_block_hook(self, module: nn.Module, args: tuple, output: Tensor) -> Optional[Tensor]:
        self._mid_features = output
        fourier = getattr(self.unet, 'fftblock', None)
        return None if fourier is None else fourier(output)

    def train(self, mode: bool = True) -> 'DepthMaster':
        super().train(mode)
        if self.align_encoder is not None:
            self.align_encoder.eval()  # frozen, batch statistics included
        return self

    # ------------------------------------------------------------------------------------------------------------
    # building blocks
    def encode(self, x: Tensor) -> Tensor:
        """(B, 4, H/8, W/8) scaled VAE posterior means of (B, 3, H, W) images in [-1, 1]."""
        return self.vae.encode(x).latent_dist.mode() * self.vae.config.scaling_factor

    def decode(self, latents: Tensor) -> Tensor:
        """(B, H, W) channel mean of the decoded latents, not clipped."""
        return self.vae.decode(latents / self.vae.config.scaling_factor).sample.mean(dim=1)

    def estimate(self, rgb: Tensor) -> Tensor:
        """The single step: (B, 3, H, W) images in [-1, 1] -> (B, 4, H/8, W/8) depth latents."""
        rgb_latent = self.encode(rgb)
        embedding = self.text_embedding.expand(len(rgb), -1, -1)
        return self.unet(rgb_latent, 1, encoder_hidden_states=embedding).sample

    def video_input_size(self, height: int, width: int) -> Tuple[int, int]:
        """(h, w) the network runs at for images of (height, width) (see :func:`depthmaster_input_size`)."""
        return depthmaster_input_size(height, width, self.processing_res)

    @torch.no_grad()
    def predict_sqrt_disparity(self, imgs: Tensor) -> Tensor:
        """(B, H, W) relative square-root disparity in [0, 1] of (B, 3, H, W) images in [0, 1], at their size."""
        size = self.video_input_size(*imgs.shape[-2:])
        x = F.interpolate(imgs, size=size, mode='bilinear', align_corners=False) if size != imgs.shape[-2:] \
            else imgs
        out = (self.decode(self.estimate(x * 2 - 1)).clamp(-1, 1) + 1) / 2
        if size != imgs.shape[-2:]:
            out = F.interpolate(out[:, None], size=imgs.shape[-2:], mode='bilinear', align_corners=False)[:, 0]
        return out.clamp(0, 1)

    def relative_depth(self, sqrt_disparity: Tensor) -> Tensor:
        return (sqrt_disparity + self.relative_depth_offset).pow(-2)

    # ------------------------------------------------------------------------------------------------------------
    # loading
    def load_text_embedding(self, path: str) -> None:
        """Take the empty-text embedding from a stored ``.npy`` (L, D) or (1, L, D) file."""
        self.text_embedding.copy_(read_embedding(path, self.text_embedding.shape, 'text embedding'))

    @torch.no_grad()
    def clip_text_embedding(self, text_encoder_dir: str, tokenizer_dir: str) -> Tensor:
        """(1, 2, D) CLIP text embedding of the empty prompt from local folders: the text encoder run on the ids
        of the start and end tokens in the tokenizer's ``vocab.json``."""
        from transformers import CLIPTextConfig, CLIPTextModel
        vocab_file = osp.join(tokenizer_dir, 'vocab.json')
        if not osp.isfile(vocab_file):
            raise FileNotFoundError(f'{vocab_file}: missing (the CLIP tokenizer of the pipeline folder)')
        with open(vocab_file) as f:
            vocab = json.load(f)
        missing = [t for t in ('<|startoftext|>', '<|endoftext|>') if t not in vocab]
        if missing:
            raise InvalidInputError(f'{vocab_file}: no {missing} (not a CLIP vocabulary)')
        config = CLIPTextConfig.from_pretrained(text_encoder_dir, local_files_only=True)
        encoder = CLIPTextModel(config)
        load_folder(encoder, text_encoder_dir, 'transformers')
        ids = torch.tensor([[vocab['<|startoftext|>'], vocab['<|endoftext|>']]])
        return encoder.eval()(ids)[0]

    @torch.no_grad()
    def load_official(self, folder: str) -> None:
        """Load the official release (Hugging Face ``zysong212/DepthMaster``) from a local folder in the Marigold
        pipeline layout: ``model_index.json``, ``unet/`` and ``vae/`` (diffusers folders; the UNet holds the
        Fourier block as ``fftblock.*``, so build with ``fourier_block=True``), and ``text_encoder/`` with
        ``tokenizer/`` (the empty-text embedding is computed from them when present, else the stored one stays, with
        a warning)."""
        if not osp.isfile(osp.join(folder, 'model_index.json')):
            raise FileNotFoundError(f'{folder}: no model_index.json (not a diffusers pipeline folder)')
        for name in ('unet', 'vae'):
            with open(osp.join(folder, name, 'config.json')) as f:
                config = json.load(f)
            ours = getattr(self, name).config
            differing = {k: (v, ours[k]) for k, v in config.items() if k in ours and not k.startswith('_')
                         and _plain(v) != _plain(ours[k])}
            if differing:
                raise InvalidInputError(f'{folder}/{name}/config.json differs from the model of the config '
                                        f'(theirs, ours): {differing}')
        load_folder(self.unet, osp.join(folder, 'unet'), 'diffusers')
        load_folder(self.vae, osp.join(folder, 'vae'), 'diffusers')
        text_encoder, tokenizer = osp.join(folder, 'text_encoder'), osp.join(folder, 'tokenizer')
        if osp.isdir(text_encoder) and osp.isdir(tokenizer):
            embedding = self.clip_text_embedding(text_encoder, tokenizer)
            if embedding.shape != self.text_embedding.shape:
                raise InvalidInputError(f'{text_encoder}: an embedding of {tuple(embedding.shape)}, the model takes '
                                        f'{tuple(self.text_embedding.shape)}')
            self.text_embedding.copy_(embedding)
        else:
            warnings.warn(f'{folder}: no text_encoder/ and tokenizer/: the empty-text embedding is not computed; the '
                          'stored one is used')

    def load_stage1(self, path: str) -> None:
        """Start from a stage-1 checkpoint of this model: all of its UNet, VAE and text embedding (the Fourier
        block, new in stage 2, keeps its initialisation)."""
        from mmengine.runner.checkpoint import _load_checkpoint
        state = _load_checkpoint(path, map_location='cpu')
        state = state.get('state_dict', state)
        wanted = {k for k in self.state_dict() if k.startswith(('unet.', 'vae.', 'text_embedding'))
                  and not k.startswith('unet.fftblock.')}
        missing = sorted(wanted - set(state))
        if missing:
            raise InvalidInputError(f'{path}: not a DepthMaster checkpoint, missing {missing[:5]} '
                                    f'({len(missing)} keys)')
        self.load_state_dict({k: state[k] for k in wanted}, strict=False)

    # ------------------------------------------------------------------------------------------------------------
    # inference
    @staticmethod
    def _images(inputs: Dict[str, Tensor]) -> Tensor:
        imgs = inputs['imgs']
        if imgs.dim() != 4:
            raise ValueError(f'DepthMaster takes (B, 3, H, W) images, got {tuple(imgs.shape)}')
        return imgs.float() / 255 if imgs.dtype == torch.uint8 else imgs

    def predict(self, inputs: Dict[str, Tensor], data_samples: Optional[Sequence] = None) -> List:
        """Fill each sample's ``pred_sqrt_disparity`` and ``pred_depth`` (H, W) at the input size."""
        sqrt_disp = self.predict_sqrt_disparity(self._images(inputs))
        outputs = []
        for i, s in enumerate(sqrt_disp):
            sample = data_samples[i] if data_samples is not None else BaseDataElement()
            sample.pred_sqrt_disparity = PixelData(data=s[None])
            sample.pred_depth = PixelData(data=self.relative_depth(s)[None])
            outputs.append(sample)
        return outputs

    def predict_window(self, images: Tensor, num_context: int, context_depths: Optional[Tensor],
                       state: None) -> Tuple[Tensor, None]:
        """Relative depths (``pred_depth``) of (T, 3, h, w) frames in [0, 1], one at a time (window 1)."""
        return self.relative_depth(self.predict_sqrt_disparity(images[num_context:])), None

    # ------------------------------------------------------------------------------------------------------------
    # training
    def _gt_depth(self, data_samples: Sequence, size: Tuple[int, int], device: torch.device) -> Tensor:
        depths = []
        for sample in data_samples:
            gt = sample.metainfo.get('gt_depth') if hasattr(sample, 'metainfo') else None
            if gt is None:
                raise KeyError('DepthMaster.loss: a data sample without gt_depth (load it with depth_source and '
                               "add 'gt_depth' to the meta_keys of Pack3DDetInputs)")
            gt = torch.as_tensor(np.asarray(gt, dtype=np.float32), device=device)
            depths.append(F.interpolate(gt[None, None], size=size, mode='nearest')[0, 0])
        depth = torch.stack(depths)
        return torch.where(torch.isfinite(depth), depth, torch.zeros_like(depth))

    def align_target(self, imgs: Tensor, grid: Tuple[int, int]) -> Tensor:
        """(B, h * w, C) tokens of the frozen external encoder resized bicubically to the mid-block grid."""
        x = imgs * 2 - 1 if self.align_official_input else imgs
        mean, std = (x.new_tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
        x = F.interpolate((x - mean) / std, scale_factor=self.align_input_scale, mode='bicubic', align_corners=False)
        features = self.align_encoder(x)
        if isinstance(features, (tuple, list)):
            features = features[self.align_out_index]
        if features.dim() != 4 or features.shape[1] != self.align_dim:
            raise ValueError(f'the external encoder gave {tuple(features.shape)}: expected (B, {self.align_dim}, '
                             'h, w) (align_dim is its token width)')
        features = F.interpolate(features, size=grid, mode='bicubic', align_corners=False)
        return features.flatten(2).transpose(1, 2)

    def _vae_loss(self, rgb: Tensor, target: Tensor) -> Dict[str, Tensor]:
        losses = {}
        for name, x in (('rgb', rgb), ('depth', target)):
            posterior = self.vae.encode(x).latent_dist
            losses[f'loss_vae_{name}'] = F.l1_loss(self.vae.decode(posterior.sample()).sample, x)
            losses[f'loss_kl_{name}'] = self.vae_kl_weight * posterior.kl().mean()
        return losses

    def loss(self, inputs: Dict[str, Tensor], data_samples: Sequence) -> Dict[str, Tensor]:
        imgs = self._images(inputs)
        if imgs.shape[-2] % 8 or imgs.shape[-1] % 8:
            raise ValueError(f'DepthMaster trains on images whose sides are multiples of 8 (the VAE stride), got '
                             f'{tuple(imgs.shape[-2:])}: resize them in the pipeline')
        depth = self._gt_depth(data_samples, imgs.shape[-2:], imgs.device)
        valid = depth > 0
        target = sqrt_disparity_target(depth, valid, self.quantile)
        if self.train_stage == 0:
            return self._vae_loss(imgs * 2 - 1, target[:, None].expand(-1, 3, -1, -1))
        prediction = self.estimate(imgs * 2 - 1)
        if self.train_stage == 2:
            decoded = self.decode(prediction)
            losses = dict(loss_mse=F.mse_loss(decoded[valid], target[valid]))
            losses['loss_grad'] = self.grad_weight * gradient_huber_loss(
                decoded[:, None], target[:, None], valid[:, None], self.grad_delta, self.huber)
            return losses
        with torch.no_grad():
            target_latent = self.encode(target[:, None].expand(-1, 3, -1, -1))
        cells = latent_valid_mask(valid, imgs.shape[-1] // prediction.shape[-1])
        if not cells.any():
            raise InvalidInputError('no latent cell has all its pixels valid: the ground truth is too sparse for '
                                    'the latent loss')
        cells = cells[:, None].expand_as(prediction)
        losses = dict(loss_latent=F.mse_loss(prediction[cells], target_latent[cells]))
        if self.align_encoder is not None:
            features = self._mid_features
            with torch.no_grad():
                tokens = self.align_target(imgs, features.shape[-2:])
            projected = self.align_projector(features.flatten(2).transpose(1, 2))
            losses['loss_align'] = self.align_weight * feature_alignment_kl(projected, tokens)
        return losses

    def forward(self, inputs: Dict[str, Tensor], data_samples: Optional[Sequence] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.predict_sqrt_disparity(self._images(inputs))
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode')


def _plain(value):
    # JSON turns tuples into lists.
    return list(value) if isinstance(value, tuple) else value
