"""ChronoDepth (Shao, Yang et al.: "Learning Temporally Consistent Video Depth from Video Diffusion Priors",
CVPR 2025).

Idea: Stable Video Diffusion (SVD img2vid-xt) fine-tuned into a video depth model whose UNet denoises the
VAE latents of depth conditioned on the channel-concatenated latents of the frames, with **one noise level
per frame**. A video then streams through windows of ``n_tokens`` frames: the first window is denoised
jointly from noise; every later one holds ``chunk_size`` new noisy frames after finished frames kept as clean
context at the timestep ``sigma_epsilon = -4`` (sigma = exp(4 t) ~ 1e-7: SVD's Euler scheduler uses
t = ln(sigma) / 4), never re-noised, never updated.

Where each piece lives (official code, inference only: jiahao-shao1/ChronoDepth):
- per-frame timestep embedding: :class:`PerFrameTimestepUNet` (``chronodepth/unet_chronodepth.py``);
- the context-aware window and its ``'replacement'`` and ``'naive'`` alternatives: :meth:`ChronoDepth.predict_window`
  (``chronodepth_pipeline.py::single_infer_{ours,replacement,naive_sliding_window}``), a windowed model of
  :class:`perception.apis.VideoDepthInferencer` (``video_window = (n_tokens, chunk_size, n_tokens - chunk_size)``);
- the input size rule: :func:`chronodepth_input_size` (``src/utils/video_utils.py::resize_max_res``);
- depth decoding: :meth:`ChronoDepth.decode_depth` (``decode_depth`` and the clip / shift that follows it);
- the discarded CLIP conditioning (the embedding of an all-zeros image): :meth:`ChronoDepth.clip_image_embedding`;
- the official diffusers folders: :meth:`ChronoDepth.load_official`.

Departures from the official pipeline (which holds the whole video in memory):
- the RGB latents are the VAE posterior means (official: a sample drawn from the global RNG);
- the depth latents are decoded window by window (the new frames of each window, in chunks of at most
  ``decode_chunk_size``); the official code decodes the whole video in chunks of 8 consecutive frames, and the
  temporal decoder sees other frame groups there;
- with ``official_numerics=False`` the Euler step gets the unscaled latent, as diffusers' SVD pipeline does.
  The default (True) is the official behaviour: the result of ``scale_model_input`` is written back into the new
  frames' latents and given to ``scheduler.step`` as ``sample``.

Training (the official code has none; interpreted from the paper, arXiv 2406.01493 v1 and v3 abstracts):
- independent noise levels per frame: ln sigma ~ N(p_mean, p_std^2) per frame (EDM, as SVD was trained), the
  v-prediction turned into a denoised latent with the scheduler's own formula and weighted by
  (sigma^2 + 1) / sigma^2;
- the "context within a clip" strategy: with probability ``context_prob`` the first k frames (k uniform in
  [1, F - 1]) are given clean at ``sigma_epsilon`` and left out of the loss, as context frames are at inference;
- the target is the VAE latent of the depth normalised per clip to [-1, 1] between its 2 % and 98 % quantiles
  (the range the decoder maps back to [0, 1]), repeated over 3 channels;
- ``train_stage``: ``'spatial'`` trains the UNet's spatial layers (temporal ones frozen), ``'temporal'`` the
  temporal layers with the spatial ones frozen, ``'full'`` all of the UNet; ``'vae'`` trains only the VAE to
  reconstruct frames and depth maps (stage 0 of a model trained from scratch, e.g. TinySVD).
"""
import json
import os.path as osp
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement, PixelData
from torch import Tensor

from perception.fileio import InvalidInputError
from perception.registry import MODELS

from .local_weights import load_folder, read_embedding

INFER_MODES = ('ours', 'replacement', 'naive')
TRAIN_STAGES = ('full', 'spatial', 'temporal', 'vae')
# Names of the UNet's temporal parameters: the temporal ResNet and transformer blocks, their frame-position
# embedding and the learned spatial/temporal mixing factors.
TEMPORAL_KEYS = ('temporal_', 'time_mixer', 'time_pos_embed')


def chronodepth_input_size(height: int, width: int, max_res: int = 1024) -> Tuple[int, int]:
    """(h, w) the network runs at for frames of (height, width): each side rounded to the nearest multiple of
    64, after scaling both by ``max_res / max(height, width)`` when the rounded long side exceeds ``max_res``."""
    h, w = round(height / 64) * 64, round(width / 64) * 64
    if max(h, w) > max_res:
        scale = max_res / max(height, width)
        h, w = round(height * scale / 64) * 64, round(width * scale / 64) * 64
    if h == 0 or w == 0:
        raise ValueError(f'frames of {height}x{width} round to {h}x{w}: ChronoDepth needs sides of at least 32 px')
    return h, w


def is_temporal_parameter(name: str) -> bool:
    """Whether a parameter of the SVD UNet belongs to its temporal layers."""
    return any(key in name for key in TEMPORAL_KEYS)


def _euler_scheduler():
    # diffusers takes seconds to import: only the diffusion models import it, when built.
    from diffusers import EulerDiscreteScheduler
    return EulerDiscreteScheduler


@MODELS.register_module()
class ChronoDepth(BaseModel):
    """ChronoDepth: SVD fine-tuned for video depth, with context-aware streaming inference.

    Inputs: ``inputs['imgs']`` (B, F, 3, H, W) clips in [0, 1] (uint8 is divided by 255), ``inputs['depths']``
    (B, F, H, W) ground-truth depth for training (<= 0 or non-finite: no data). Prediction streams through
    :class:`perception.apis.VideoDepthInferencer` (:meth:`predict_window`); :meth:`predict` runs one clip as a
    video and fills each sample's ``pred_depth`` (F, H, W).

    Args:
        unet: keyword arguments of diffusers' ``UNetSpatioTemporalConditionModel`` (8 input channels: RGB and
            depth latents).
        vae: keyword arguments of ``AutoencoderKLTemporalDecoder``.
        scheduler: keyword arguments of ``EulerDiscreteScheduler`` (SVD's: v-prediction, continuous timesteps).
        official_dirs: ``dict(unet=..., base=...)``: local diffusers folders of the official release to load at
            build time (see :meth:`load_official`).
        image_embed_file: ``.npy`` (1, D) CLIP embedding of the all-zeros image, used when no CLIP encoder is
            loaded (a checkpoint of this model carries it as the ``image_embedding`` buffer anyway).
        num_inference_steps, n_tokens, chunk_size, sigma_epsilon, max_res, decode_chunk_size: as the official
            ``run_infer.py`` (5, 10, 5, -4, 1024, 8).
        infer_mode: ``'ours'`` (context-aware), ``'replacement'`` (context re-noised to each step's level) or
            ``'naive'`` (each window denoised from noise, only its new frames kept).
        official_numerics: the scaled latent written back and stepped (the official behaviour, see above).
        fps, motion_bucket_id, noise_aug_strength: SVD's added time ids (the official 7, 127, 0; fps - 1 is fed).
        seed: seed of the noise of each video (None: the global RNG).
        fp16_on_gpu: run the UNet in fp16 once the model is moved to a GPU with ``.to`` (see :meth:`to`).
        train_stage, p_mean, p_std, context_prob: training (see the module docstring).
        vae_kl_weight: weight of the KL term of the ``'vae'`` stage.
    """

    video_metric = False

    def __init__(self,
                 unet: dict,
                 vae: dict,
                 scheduler: dict,
                 official_dirs: Optional[dict] = None,
                 image_embed_file: Optional[str] = None,
                 num_inference_steps: int = 5,
                 n_tokens: int = 10,
                 chunk_size: int = 5,
                 sigma_epsilon: float = -4.0,
                 infer_mode: str = 'ours',
                 official_numerics: bool = True,
                 max_res: int = 1024,
                 decode_chunk_size: int = 8,
                 fps: int = 7,
                 motion_bucket_id: int = 127,
                 noise_aug_strength: float = 0.0,
                 seed: Optional[int] = None,
                 fp16_on_gpu: bool = True,
                 train_stage: str = 'full',
                 p_mean: float = 0.7,
                 p_std: float = 1.6,
                 context_prob: float = 0.5,
                 vae_kl_weight: float = 1e-6,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if infer_mode not in INFER_MODES:
            raise ValueError(f'infer_mode must be one of {INFER_MODES}, got {infer_mode!r}')
        if train_stage not in TRAIN_STAGES:
            raise ValueError(f'train_stage must be one of {TRAIN_STAGES}, got {train_stage!r}')
        if not 0 < chunk_size < n_tokens:
            raise ValueError(f'need 0 < chunk_size < n_tokens, got chunk_size={chunk_size}, n_tokens={n_tokens}')
        from diffusers import AutoencoderKLTemporalDecoder
        from diffusers.models.attention_processor import AttnProcessor2_0

        from .chronodepth_unet import PerFrameTimestepUNet
        self.unet = PerFrameTimestepUNet(**unet)
        self.vae = AutoencoderKLTemporalDecoder(**vae)
        # scaled_dot_product_attention everywhere (the official code asks for xformers).
        self.unet.set_attn_processor(AttnProcessor2_0())
        self.vae.set_attn_processor(AttnProcessor2_0())
        with torch.device('cpu'):  # the scheduler's tables stay on the CPU, also when built on 'meta'
            self.scheduler = _euler_scheduler()(**scheduler)
        self.register_buffer('image_embedding', torch.zeros(1, self.unet.config.cross_attention_dim))
        self.num_inference_steps = num_inference_steps
        self.n_tokens, self.chunk_size, self.sigma_epsilon = n_tokens, chunk_size, sigma_epsilon
        self.infer_mode, self.official_numerics = infer_mode, official_numerics
        self.max_res, self.decode_chunk_size = max_res, decode_chunk_size
        self.added_time_ids = (fps - 1, motion_bucket_id, noise_aug_strength)
        self.seed, self.fp16_on_gpu = seed, fp16_on_gpu
        self.train_stage, self.p_mean, self.p_std = train_stage, p_mean, p_std
        self.context_prob, self.vae_kl_weight = context_prob, vae_kl_weight
        self._set_trainable()
        if image_embed_file is not None:
            self.load_image_embedding(image_embed_file)
        if official_dirs is not None:
            self.load_official(**official_dirs)

    # ----------------------------------------------------------------------------------------------------------
    # building blocks
    @property
    def video_window(self) -> Tuple[int, int, int]:
        """(window, stride, context) for :class:`perception.apis.VideoDepthInferencer`."""
        return self.n_tokens, self.chunk_size, self.n_tokens - self.chunk_size

    def video_input_size(self, height: int, width: int) -> Tuple[int, int]:
        return chronodepth_input_size(height, width, self.max_res)

    def _set_trainable(self) -> None:
        stage = self.train_stage
        self.vae.requires_grad_(stage == 'vae')
        for name, param in self.unet.named_parameters():
            temporal = is_temporal_parameter(name)
            param.requires_grad_(stage == 'full' or (stage == 'spatial' and not temporal)
                                 or (stage == 'temporal' and temporal))

    def time_ids(self, batch: int, device: torch.device) -> Tensor:
        return torch.tensor([self.added_time_ids], dtype=torch.float32, device=device).expand(batch, -1)

    def frame_embeddings(self, frames: int) -> Tensor:
        """(frames, 1, D): the constant CLIP embedding, one per frame."""
        return self.image_embedding[:, None].expand(frames, 1, -1)

    def encode(self, x: Tensor) -> Tensor:
        """(N, 4, h/8, w/8) scaled VAE posterior means of (N, 3, h, w) images in [-1, 1]."""
        return self.vae.encode(x).latent_dist.mode() * self.vae.config.scaling_factor

    def decode_depth(self, latents: Tensor) -> Tensor:
        """(N, H, W) relative depth in [0, 1] of (N, 4, h, w) depth latents: VAE-decoded in chunks of
        ``decode_chunk_size`` frames, the mean of the 3 channels, clipped to [-1, 1], mapped to [0, 1]."""
        latents = latents / self.vae.config.scaling_factor
        out = [self.vae.decode(chunk, num_frames=len(chunk)).sample for chunk in latents.split(self.decode_chunk_size)]
        return (torch.cat(out).mean(dim=1).clamp(-1, 1) + 1) / 2

    def denoise(self, rgb: Tensor, latents: Tensor, timesteps: Tensor) -> Tensor:
        """One UNet call on one video: (F, 4, h, w) RGB and depth latents, (F, ) timesteps -> (F, 4, h, w), in
        the latents' dtype whatever the UNet's (fp16 on a GPU)."""
        dtype = self.unet.dtype
        x = torch.cat([rgb, latents], dim=1)[None].to(dtype)
        out = self.unet(x, timesteps[None], self.frame_embeddings(len(rgb)).to(dtype),
                        self.time_ids(1, rgb.device).to(dtype))[0]
        return out.to(latents.dtype)

    def to(self, *args, **kwargs) -> 'ChronoDepth':
        """Move the model; on a GPU the UNet runs in fp16 (``fp16_on_gpu``), the VAE, the latents and the scheduler
        stay in fp32 (the official code upcasts its VAE too); back on the CPU the UNet returns to fp32."""
        module = super().to(*args, **kwargs)
        on_gpu = self.image_embedding.device.type == 'cuda'
        if on_gpu and self.fp16_on_gpu:
            self.unet.half()
        elif not on_gpu and self.unet.dtype == torch.float16:
            self.unet.float()
        return module

    # ----------------------------------------------------------------------------------------------------------
    # loading
    @torch.no_grad()
    def clip_image_embedding(self, image_encoder_dir: str, feature_extractor_dir: str) -> Tensor:
        """(1, D) image embedding of the all-zeros image (in [0, 1], then CLIP-normalised) from local folders."""
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
        config_file = osp.join(feature_extractor_dir, 'preprocessor_config.json')
        if not osp.isfile(config_file):
            raise FileNotFoundError(f'{config_file}: missing (the CLIP feature extractor of the base folder)')
        with open(config_file) as f:
            pre = json.load(f)
        encoder = CLIPVisionModelWithProjection(CLIPVisionConfig.from_pretrained(image_encoder_dir,
                                                                                 local_files_only=True))
        load_folder(encoder, image_encoder_dir, 'transformers')
        size = encoder.config.image_size
        mean, std = (torch.tensor(pre[k], dtype=torch.float32).view(1, 3, 1, 1) for k in ('image_mean', 'image_std'))
        pixels = ((torch.zeros(1, 3, size, size) - mean) / std)
        return encoder.eval()(pixels).image_embeds

    def load_image_embedding(self, path: str) -> None:
        """Take the CLIP embedding from a stored ``.npy`` (1, D) file (warns: no CLIP encoder computes it)."""
        embedding = read_embedding(path, self.image_embedding.shape, 'image embedding')
        warnings.warn(f'ChronoDepth: the CLIP embedding of the all-zeros image is read from {path}, not computed '
                      'from a CLIP encoder')
        self.image_embedding.copy_(embedding)

    @torch.no_grad()
    def load_official(self, unet: str, base: str) -> None:
        """Load the official release from local diffusers folders (fp16 or fp32 files, as float32).

        Args:
            unet: the fine-tuned UNet folder (``jhshao/ChronoDepth-v1``: ``config.json`` and
                ``diffusion_pytorch_model.safetensors``).
            base: the SVD pipeline folder laid out by its ``model_index.json`` (``jhshao/ChronoDepth`` or
                ``stable-video-diffusion-img2vid-xt``): ``vae/``, ``scheduler/``, and ``image_encoder/`` with
                ``feature_extractor/`` (the CLIP embedding is computed from them when present, else the stored
                one stays, with a warning). Its ``unet/`` is not read.
        """
        for folder in (unet, base):
            if not osp.isdir(folder):
                raise FileNotFoundError(f'{folder}: no such folder (ChronoDepth loads local folders only)')
        if not osp.isfile(osp.join(base, 'model_index.json')):
            raise FileNotFoundError(f'{base}: no model_index.json (not a diffusers pipeline folder)')
        load_folder(self.unet, unet, 'diffusers')
        load_folder(self.vae, osp.join(base, 'vae'), 'diffusers')
        scheduler = _euler_scheduler()
        self.scheduler = scheduler.from_config(scheduler.load_config(osp.join(base, 'scheduler'),
                                                                     local_files_only=True))
        encoder, extractor = osp.join(base, 'image_encoder'), osp.join(base, 'feature_extractor')
        if osp.isdir(encoder) and osp.isdir(extractor):
            self.image_embedding.copy_(self.clip_image_embedding(encoder, extractor))
        else:
            warnings.warn(f'{base}: no image_encoder/ and feature_extractor/: the CLIP embedding of the all-zeros '
                          'image is not computed; the stored one is used')

    # ----------------------------------------------------------------------------------------------------------
    # inference
    def _generator(self, device: torch.device) -> Optional[torch.Generator]:
        return None if self.seed is None else torch.Generator(device).manual_seed(self.seed)

    def _noise(self, shape: Sequence[int], like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)

    def _euler(self, rgb: Tensor, context: Tensor, new: Tensor, generator: Optional[torch.Generator]) -> Tensor:
        """Denoise the ``new`` latents of one window after ``context`` finished latents (see ``infer_mode``)."""
        scheduler = self.scheduler
        scheduler.set_timesteps(self.num_inference_steps, device=rgb.device)
        num_context = len(context)
        for i, t in enumerate(scheduler.timesteps):
            if self.infer_mode == 'ours':
                timesteps = torch.cat([t.new_full((num_context, ), self.sigma_epsilon), t.new_full((len(new), ), t)])
                scaled = scheduler.scale_model_input(new, t)
                window = torch.cat([context, scaled])
                prediction = self.denoise(rgb, window, timesteps)[num_context:]
                new = scheduler.step(prediction, t, scaled if self.official_numerics else new).prev_sample
            else:
                # 'replacement': the context noised to this step's level and stepped with the new frames (its
                # stepped latents are dropped); 'naive': the context slots hold noise like the new frames.
                if self.infer_mode == 'replacement':
                    noised = context + self._noise(context.shape, context, generator) * scheduler.sigmas[i]
                    window = torch.cat([noised, new])
                else:
                    window = new
                scaled = scheduler.scale_model_input(window, t)
                prediction = self.denoise(rgb, scaled, t.expand(len(window)))
                window = scheduler.step(prediction, t, scaled if self.official_numerics else window).prev_sample
                new = window[-len(new):] if self.infer_mode == 'replacement' else window
        scheduler._step_index = None
        return new[len(new) - (len(rgb) - num_context):] if self.infer_mode == 'naive' else new

    @torch.no_grad()
    def predict_window(self, images: Tensor, num_context: int, context_depths: Optional[Tensor],
                       state: Optional[Dict[str, Any]]) -> Tuple[Tensor, Dict[str, Any]]:
        """Depths of the new frames of one window (:class:`perception.apis.video_depth.WindowedDepthModel`).

        The finished frames' RGB and depth latents are kept in ``state`` (at most ``n_tokens - 1`` of each): the
        context is taken from there, as many frames as fill the window to ``n_tokens`` (the official schedule
        ``start = max(0, cur + h - n_tokens)``, so a short last chunk sees more context than ``num_context``).

        Args:
            images: (T, 3, h, w) RGB in [0, 1], ``h, w`` from :meth:`video_input_size`: the context frames, then
                the new ones.
            num_context: how many of ``images`` are context frames (their latents are in ``state``).
            context_depths: unused (the context is kept as latents).
            state: None at the first window of a video.

        Returns:
            (T - num_context, h, w) relative depth in [0, 1] (larger is farther) and the state for the next call.
        """
        if num_context and state is None:
            raise ValueError('ChronoDepth.predict_window: context frames without the state of the previous window')
        if state is None:
            empty = images.new_zeros(0, self.vae.config.latent_channels, *[s // 8 for s in images.shape[-2:]])
            state = dict(rgb=empty, depth=empty, generator=self._generator(images.device))
        new_images = images[num_context:]
        if len(new_images) > self.n_tokens:
            raise ValueError(f'{len(new_images)} new frames in one window: ChronoDepth takes at most {self.n_tokens}')
        rgb_new = self.encode(new_images * 2 - 1)
        keep = min(len(state['rgb']), self.n_tokens - len(new_images))
        rgb = torch.cat([state['rgb'][len(state['rgb']) - keep:], rgb_new])
        context = state['depth'][len(state['depth']) - keep:]
        self.scheduler.set_timesteps(self.num_inference_steps, device=images.device)
        shape = (len(rgb) if self.infer_mode == 'naive' else len(rgb_new), *rgb_new.shape[1:])
        new = self._noise(shape, rgb_new, state['generator']) * self.scheduler.init_noise_sigma
        new = self._euler(rgb, context, new, state['generator'])
        history = self.n_tokens - 1
        first = max(0, len(rgb) - history)
        state.update(rgb=rgb[first:], depth=torch.cat([context, new])[first:])
        return self.decode_depth(new), state

    def predict_video(self, images: Tensor) -> Tensor:
        """(F, h, w) relative depth of a whole (F, 3, h, w) video in [0, 1] at the network size, window by window."""
        window, stride, _ = self.video_window
        state, depths, start = None, [], 0
        while start < len(images):
            count = window if start == 0 else stride
            num_context = min(start, self.n_tokens - self.chunk_size)
            depth, state = self.predict_window(images[start - num_context:start + count], num_context, None, state)
            depths.append(depth)
            start += count
        return torch.cat(depths)

    def predict(self, inputs: Dict[str, Tensor], data_samples: Optional[Sequence] = None) -> List:
        """Each clip of ``inputs['imgs']`` as one video, resized as :meth:`video_input_size` asks and back."""
        imgs = self._images(inputs)
        outputs = []
        for i, clip in enumerate(imgs):
            size = self.video_input_size(*clip.shape[-2:])
            depth = self.predict_video(F.interpolate(clip, size=size, mode='bilinear', align_corners=False))
            depth = F.interpolate(depth[:, None], size=clip.shape[-2:], mode='bilinear', align_corners=False)
            sample = data_samples[i] if data_samples is not None else BaseDataElement()
            sample.pred_depth = PixelData(data=depth[:, 0].clamp(0, 1))
            outputs.append(sample)
        return outputs

    # ----------------------------------------------------------------------------------------------------------
    # training
    @staticmethod
    def _images(inputs: Dict[str, Tensor]) -> Tensor:
        imgs = inputs['imgs']
        if imgs.dim() != 5:
            raise ValueError(f'ChronoDepth takes clips of (B, F, 3, H, W) images, got {tuple(imgs.shape)}')
        return imgs.float() / 255 if imgs.dtype == torch.uint8 else imgs

    @staticmethod
    def normalize_depth(depth: Tensor) -> Tensor:
        """(B, F, H, W) depth to [-1, 1] per clip between its 2 % and 98 % quantiles over valid pixels (> 0 and
        finite); pixels without data are set to the far end."""
        out = torch.empty_like(depth)
        for i, clip in enumerate(depth):
            valid = torch.isfinite(clip) & (clip > 0)
            if not valid.any():
                raise InvalidInputError(f'clip {i} of the batch has no valid depth (all <= 0 or not finite)')
            low, high = torch.quantile(clip[valid].float(), torch.tensor([0.02, 0.98], device=clip.device))
            norm = ((clip - low) / (high - low).clamp_min(1e-6) * 2 - 1).clamp(-1, 1)
            out[i] = torch.where(valid, norm, torch.ones_like(norm))
        return out

    def _vae_loss(self, imgs: Tensor, depth3: Tensor) -> Dict[str, Tensor]:
        frames = imgs.shape[1]
        losses = {}
        for name, x in (('rgb', imgs.flatten(0, 1) * 2 - 1), ('depth', depth3.flatten(0, 1))):
            posterior = self.vae.encode(x).latent_dist
            recon = self.vae.decode(posterior.sample(), num_frames=frames).sample
            losses[f'loss_vae_{name}'] = F.l1_loss(recon, x)
            losses[f'loss_kl_{name}'] = self.vae_kl_weight * posterior.kl().mean()
        return losses

    def loss(self, inputs: Dict[str, Tensor], data_samples: Optional[Sequence] = None) -> Dict[str, Tensor]:
        """Denoising loss of the depth latents with independent per-frame noise levels (see the module docstring)."""
        imgs = self._images(inputs)
        batch, frames = imgs.shape[:2]
        depth3 = self.normalize_depth(inputs['depths'].float())[:, :, None].expand(-1, -1, 3, -1, -1)
        if self.train_stage == 'vae':
            return self._vae_loss(imgs, depth3)
        with torch.no_grad():
            rgb = self.encode(imgs.flatten(0, 1) * 2 - 1).unflatten(0, (batch, frames))
            target = self.encode(depth3.flatten(0, 1)).unflatten(0, (batch, frames))
        device = imgs.device
        sigma = (torch.randn(batch, frames, device=device) * self.p_std + self.p_mean).exp()
        supervised = torch.ones(batch, frames, dtype=torch.bool, device=device)
        if frames > 1:
            num_context = torch.randint(1, frames, (batch, ), device=device)
            num_context = torch.where(torch.rand(batch, device=device) < self.context_prob, num_context, 0)
            supervised = torch.arange(frames, device=device)[None] >= num_context[:, None]
            sigma = torch.where(supervised, sigma, sigma.new_tensor(4 * self.sigma_epsilon).exp())
        s = sigma[..., None, None, None]
        noisy = target + torch.randn_like(target) * s
        scaled = noisy / (s**2 + 1).sqrt()
        timesteps = sigma.log() / 4
        embeddings = self.frame_embeddings(batch * frames)
        prediction = self.unet(torch.cat([rgb, scaled], dim=2), timesteps, embeddings, self.time_ids(batch, device))
        denoised = prediction * (-s / (s**2 + 1).sqrt()) + noisy / (s**2 + 1)
        weight = (s**2 + 1) / s**2
        error = (weight * (denoised - target)**2).mean(dim=(2, 3, 4))
        return dict(loss_depth=(error * supervised).sum() / supervised.sum())

    def forward(self, inputs: Dict[str, Tensor], data_samples: Optional[Sequence] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            imgs = self._images(inputs)
            return torch.stack([self.predict_video(clip) for clip in imgs])
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode')
