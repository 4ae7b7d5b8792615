"""TiO-Depth (Zhou and Dong: "Two-in-One Depth: Bridging the Gap Between Monocular and Binocular
Self-supervised Depth Estimation", ICCV 2023).

Idea: one Siamese network is both a monocular and a binocular depth model. A shared Swin-T encoder and a
shared dual-path decoder predict 49 logits over exponentially spaced disparities; the monocular path
decodes one view, the stereo path decodes both and exchanges them by monocular feature matching (MFM, a
cost volume of the decoder features warped between the views). Three cumulative training stages:
mono (discrete photometric loss), stereo (photometric, cost and guidance losses with the mono output as a
teacher) and refinement, which distils a fusion of the mono and stereo volumes into the monocular path.

Where each piece lives (official code: ZM-Zhou/TiO-Depth_pytorch):
- disparity bins, warps, SDFA, MFM, the dual-path decoder, occlusion and plane masks, VGG19:
  :mod:`.tiodepth_layers` (``tio_depth.py::_initialize_model``, ``dual_path_decoder.py``);
- the stages and their losses: :class:`TiODepth` (``tio_depth.py::_forward_proj`` and
  ``_postprocess_outputs``, the loss table of ``tio_depth-swint-m_384crop256_kitti_stereo.yaml``);
- SSIM/L1 and smoothness: :mod:`perception.models.losses.photometric_loss`;
- the official parameter split of each stage's optimiser: :meth:`TiODepth.stage_parameters`; one optimiser
  per stage, stepped in turn: :mod:`perception.engine.stagewise_training`.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from torch import Tensor, nn

from perception.models.losses import edge_aware_smoothness, gradient_difference_loss, photometric_loss
from perception.models.builder import build_backbone
from perception.registry import MODELS
from perception.structures.camera import stereo_direction
from .tiodepth_layers import (DualPathDecoder, VGG19Features, exponential_disparity_bins, plane_mask,
                              render_partner_view, self_occlusion_mask, warp_by_disparity)

STAGES = ('mono', 'stereo', 'refine')
OUT_MODES = STAGES
# Official loss weights (the "rate" of each term in the training yaml).
DEFAULT_LOSS_WEIGHTS = dict(
    mono_photo=1.0,  # L1 of the discrete synthesis
    mono_perceptual=0.01,  # each of the three VGG19 L2 terms
    mono_smooth=8e-4,
    stereo_photo=1.0,  # 0.85 SSIM + 0.15 L1 against the occlusion-fused target
    stereo_smooth=8e-3,
    stereo_cost=0.01,  # each MFM level
    stereo_grad=0.01,  # gradient guidance towards the mono disparity
    stereo_guide=0.01,  # L1 towards the mono disparity where the mono warp leaves the image
    refine_distill=1.0)  # KL from the fused volume to the refined mono volume


@MODELS.register_module()
class TiODepth(BaseModel):
    """TiO-Depth: monocular, binocular and refined monocular depth from one network.

    Inputs (from ``Det3DDataPreprocessor`` with ``mean=0, std=255``): ``inputs['imgs']`` (B, 2, 3, H, W)
    in [0, 1], the target view then its stereo partner (training and stereo inference), or (B, 3, H, W)
    for the monocular modes. Each data sample's metainfo gives:

    - the stereo direction: ``stereo_direction`` (+1 when the partner camera is to the right), or
      ``side`` ('l' / 'r', KITTI raw) and ``flip`` / ``flip_direction`` (a horizontal flip of both
      images negates it);
    - the focal length times the baseline: ``cam2img`` (fx of the original image) times
      ``scale_factor[0]`` (mmcv resizes) times ``baseline`` (metres); without them ``focal_baseline``.
      Crops keep fx, so disparity bins stay in input pixels through resize-and-crop pipelines.

    Args:
        backbone: encoder config, four levels at strides 2, 4, 8, 16 (official: Swin-T with a stride-2
            patch embedding, ``mmdet.SwinTransformer`` with ``patch_size=2, strides=(2, 2, 2, 2)``).
            Pretrained weights load from a local file through its
            ``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` (official Swin-T checkpoints need
            ``convert_weights=True``); without one it starts from a random initialisation, with a warning.
        decoder_channels: channels of the decoder levels 0 .. 3.
        num_bins, min_disp, max_disp: the exponential disparity bins (pixels of the input).
        mfm_levels: decoder levels with monocular feature matching.
        distill_levels: decoder levels with the distilled (refined-mono) offset branch.
        patch_embed_kernel: kernel of the stride-2 patch embedding. The official encoder uses 4 (padding 1,
            overlapping, so ImageNet Swin-T patch weights load); mmdet's SwinTransformer builds only
            non-overlapping embeddings (it asserts ``strides[0] == patch_size``), so its projection is
            replaced here. None keeps mmdet's.
        focal_baseline: fx * baseline (pixels x metres) when the metainfo lacks them (official ``d2d``
            400.9: fx 0.58 x 1280 px, baseline 0.54 m).
        stage_start_epochs: first epoch (0-based) of the mono, stereo and refine losses; they stay active
            once started (official: epochs 1, 21, 31 counted from 1).
        loss_weights: overrides of :data:`DEFAULT_LOSS_WEIGHTS`.
        cost_l1_threshold: per-pixel L1 (summed over bins) below which the cost loss is zero.
        occlusion_max_disp: largest disparity (half-resolution pixels) of the occlusion masks.
        plane_threshold: Laplacian threshold of the plane mask of the fused volume.
        vgg_checkpoint: local torchvision ``vgg19`` state dict for the perceptual loss, loaded by
            ``init_weights``; None switches the perceptual loss off.
        test_out_modes: output modes of ``predict``; the first one fills ``pred_depth``, each one
            ``pred_depth_<mode>``.
        loss_ranking: an optional ordering loss of the monocular depth against a teacher map (not part of
            TiO-Depth), e.g. ``dict(type='DepthRankingLoss')``: it reads the teacher from each data sample's
            ``depth_prior`` metainfo (H, W) of the input size, as :class:`StereoPseudoDisparity` writes it
            (inverse-depth-like, 0 = no value), and scores ``1 / disparity``.
        data_preprocessor: ``Det3DDataPreprocessor`` config.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 decoder_channels: Sequence[int] = (64, 128, 256, 256),
                 num_bins: int = 49,
                 min_disp: float = 2.,
                 max_disp: float = 300.,
                 mfm_levels: Sequence[int] = (3, 2, 1),
                 distill_levels: Sequence[int] = (3, 2, 1),
                 patch_embed_kernel: Optional[int] = 4,
                 focal_baseline: float = 400.9,
                 stage_start_epochs: Sequence[int] = (0, 20, 30),
                 loss_weights: Optional[Dict[str, float]] = None,
                 cost_l1_threshold: float = 1.,
                 occlusion_max_disp: int = 60,
                 plane_threshold: float = 0.13,
                 vgg_checkpoint: Optional[str] = None,
                 test_out_modes: Sequence[str] = ('refine', ),
                 loss_ranking: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = build_backbone(backbone, type(self).__name__)
        if patch_embed_kernel is not None:
            self._overlap_patch_embed(patch_embed_kernel)
        self.decoder = DualPathDecoder(self.backbone.num_features, decoder_channels, num_bins, mfm_levels,
                                       distill_levels)
        self.register_buffer('disparities', exponential_disparity_bins(num_bins, min_disp, max_disp),
                             persistent=False)
        self.focal_baseline = focal_baseline
        if len(stage_start_epochs) != len(STAGES):
            raise ValueError(f'stage_start_epochs needs {len(STAGES)} entries, got {stage_start_epochs}')
        self.stage_start_epochs = dict(zip(STAGES, stage_start_epochs))
        unknown = set(loss_weights or {}) - set(DEFAULT_LOSS_WEIGHTS)
        if unknown:
            raise KeyError(f'unknown loss weights {sorted(unknown)}, expected {sorted(DEFAULT_LOSS_WEIGHTS)}')
        self.loss_weights = dict(DEFAULT_LOSS_WEIGHTS, **(loss_weights or {}))
        self.cost_l1_threshold = cost_l1_threshold
        self.occlusion_max_disp = occlusion_max_disp
        self.plane_threshold = plane_threshold
        self.vgg_checkpoint = vgg_checkpoint
        self.vgg = VGG19Features().requires_grad_(False) if vgg_checkpoint is not None else None
        bad = [m for m in test_out_modes if m not in OUT_MODES]
        if bad or not test_out_modes:
            raise ValueError(f'test_out_modes must be a non-empty subset of {OUT_MODES}, got {test_out_modes}')
        self.test_out_modes = tuple(test_out_modes)
        self.loss_ranking = MODELS.build(loss_ranking) if loss_ranking is not None else None

    def _overlap_patch_embed(self, kernel: int) -> None:
        embed = self.backbone.patch_embed
        old = embed.projection
        stride = old.stride[0]
        if kernel < stride or (kernel - stride) % 2:
            raise ValueError(f'patch_embed_kernel {kernel} with stride {stride}: need an even overlap')
        if old.kernel_size[0] != kernel:
            embed.projection = nn.Conv2d(old.in_channels, old.out_channels, kernel, stride=stride,
                                         padding=(kernel - stride) // 2)

    def init_weights(self) -> None:
        super().init_weights()
        if self.vgg is not None:
            if not osp.isfile(self.vgg_checkpoint):
                raise FileNotFoundError(f'vgg_checkpoint {self.vgg_checkpoint!r}: no such local file (a '
                                        'torchvision vgg19 state dict; None switches the perceptual loss off)')
            self.vgg.load_torchvision(self.vgg_checkpoint)

    # ------------------------------------------------------------------ inputs and geometry

    @staticmethod
    def _views(inputs: Union[Dict[str, Tensor], Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        imgs = inputs['imgs'] if isinstance(inputs, dict) else inputs
        if imgs.dim() == 4:
            return imgs, None
        if imgs.dim() != 5 or imgs.shape[1] != 2:
            raise ValueError(f'expected images (B, 3, H, W) or a stereo pair (B, 2, 3, H, W), got '
                             f'{tuple(imgs.shape)}')
        return imgs[:, 0], imgs[:, 1]

    @staticmethod
    def _partner(partner: Optional[Tensor], what: str) -> Tensor:
        if partner is None:
            raise ValueError(f'{what} needs the stereo partner: inputs (B, 2, 3, H, W)')
        return partner

    def _directions(self, data_samples: Sequence, device: torch.device) -> Tensor:
        """(B,) stereo direction of the target view of each sample."""
        out = []
        for i, sample in enumerate(data_samples):
            try:
                out.append(stereo_direction(sample.metainfo))
            except KeyError as error:
                raise KeyError(f'data sample {i}: {error.args[0]}') from None
        return torch.tensor(out, device=device)

    def _focal_baselines(self, data_samples: Optional[Sequence], batch: int, device: torch.device) -> Tensor:
        """(B,) fx (input pixels) times baseline (metres) of each sample."""
        out = []
        for i in range(batch):
            meta = data_samples[i].metainfo if data_samples is not None else {}
            if 'cam2img' in meta and 'baseline' in meta:
                fx = float(meta['cam2img'][0][0])
                if 'scale_factor' in meta:
                    fx *= float(meta['scale_factor'][0])
                out.append(fx * float(meta['baseline']))
            else:
                out.append(self.focal_baseline)
        return torch.tensor(out, device=device)

    def extract_feat(self, img: Tensor) -> List[Tensor]:
        """Encoder features (finest first) of images in [0, 1], normalised as the official code does."""
        return list(self.backbone((img - 0.45) / 0.225))

    def expected_disparity(self, logits: Tensor) -> Tensor:
        """(B, 1, H, W) disparity in input pixels: the expectation over the bins."""
        return (logits.softmax(1) * self.disparities.view(1, -1, 1, 1)).sum(1, keepdim=True)

    # ------------------------------------------------------------------ the three paths

    def forward_mono(self, img: Tensor, feats: Optional[List[Tensor]] = None) -> Tensor:
        """Monocular logits (B, K, H, W)."""
        feats = self.extract_feat(img) if feats is None else feats
        return self.decoder.forward_mono(feats, tuple(img.shape[-2:]))

    def forward_stereo(self, img: Tensor, partner: Tensor, direction: Tensor,
                       feats: Optional[List[Tensor]] = None,
                       partner_feats: Optional[List[Tensor]] = None) -> Tuple[Tensor, Dict[int, Tensor]]:
        """Binocular logits (B, K, H, W) of the target view and its MFM costs {level: (B, K, h, w)}."""
        feats = self.extract_feat(img) if feats is None else feats
        partner_feats = self.extract_feat(partner) if partner_feats is None else partner_feats
        logits, _, costs = self.decoder.forward_stereo(feats, partner_feats, tuple(img.shape[-2:]),
                                                       self.disparities, direction)
        return logits, costs

    def forward_refine(self, img: Tensor, feats: Optional[List[Tensor]] = None) -> Tensor:
        """Refined monocular logits (B, K, H, W) from the distilled branch."""
        feats = self.extract_feat(img) if feats is None else feats
        return self.decoder.forward_mono(feats, tuple(img.shape[-2:]), distilled=True)

    def forward_logits(self, inputs: Union[Dict[str, Tensor], Tensor], data_samples: Optional[Sequence],
                       mode: str) -> Tensor:
        """Logits of one output mode ('mono', 'stereo' or 'refine')."""
        img, partner = self._views(inputs)
        if mode == 'mono':
            return self.forward_mono(img)
        if mode == 'refine':
            return self.forward_refine(img)
        if mode == 'stereo':
            if data_samples is None:
                raise ValueError('the stereo mode needs data samples for the stereo direction')
            direction = self._directions(data_samples, img.device)
            return self.forward_stereo(img, self._partner(partner, 'the stereo mode'), direction)[0]
        raise ValueError(f'unknown output mode {mode!r}, expected one of {OUT_MODES}')

    # ------------------------------------------------------------------ training

    def active_stages(self) -> Tuple[str, ...]:
        """The stages whose losses are on at the current epoch (mmengine's message hub)."""
        epoch = MessageHub.get_current_instance().get_info('epoch', 0)
        return tuple(s for s in STAGES if epoch >= self.stage_start_epochs[s])

    def prepare_stages(self, inputs: Union[Dict[str, Tensor], Tensor], data_samples: Sequence) -> Dict[str, Tensor]:
        """What the stages of one training step share: the target view ``img`` (B, 3, H, W), its stereo
        ``partner``, the stereo ``direction`` (B,) and the ranking loss's ``depth_prior`` (B, H, W) or None.
        :meth:`stage_loss` adds each stage's detached results for the later ones."""
        img, partner = self._views(inputs)
        return dict(img=img, partner=self._partner(partner, 'training'),
                    direction=self._directions(data_samples, img.device),
                    depth_prior=self._depth_prior(data_samples, img.device))

    def stage_loss(self, stage: str, state: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """The losses of one stage, given the :meth:`prepare_stages` state of the step."""
        return getattr(self, f'_loss_{stage}')(state['img'], state['partner'], state['direction'], state)

    def _teacher_features(self, img: Tensor, cache: dict) -> List[Tensor]:
        if 'feats' not in cache:
            with torch.no_grad():
                cache['feats'] = self.extract_feat(img)
        return cache['feats']

    def _teacher_mono(self, img: Tensor, cache: dict) -> Tensor:
        if 'mono_logits' not in cache:
            with torch.no_grad():
                cache['mono_logits'] = self.forward_mono(img, self._teacher_features(img, cache))
        return cache['mono_logits']

    def _loss_mono(self, img: Tensor, partner: Tensor, direction: Tensor, cache: dict) -> Dict[str, Tensor]:
        feats = self.extract_feat(img)
        logits = self.forward_mono(img, feats)
        cache['feats'] = [f.detach() for f in feats]
        cache['mono_logits'] = logits.detach()
        return self._mono_losses(logits, img, partner, direction, cache.get('depth_prior'))

    def _mono_losses(self, logits: Tensor, img: Tensor, partner: Tensor, direction: Tensor,
                     prior: Optional[Tensor] = None, valid: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """The mono stage's losses of logits (B, K, H, W) of ``img``; ``valid`` (B, 1, H, W) masks the
        photometric and ranking terms (AugUndo's undone pixels), ``prior`` (B, H, W) feeds the ranking loss."""
        w = self.loss_weights
        synth = render_partner_view(logits, img, self.disparities, direction)
        error = (synth - partner).abs()
        if valid is not None:
            error = error * valid
            photo = error.sum() / (valid.sum() * error.shape[1]).clamp(min=1)
        else:
            photo = error.mean()
        losses = dict(loss_mono_photo=w['mono_photo'] * photo)
        if self.vgg is not None:
            self.vgg.eval()
            with torch.no_grad():
                real_feats = self.vgg(partner)
            losses['loss_mono_perceptual'] = w['mono_perceptual'] * sum(
                F.mse_loss(s, r) for s, r in zip(self.vgg(synth), real_feats))
        disp = self.expected_disparity(logits)
        losses['loss_mono_smooth'] = w['mono_smooth'] * edge_aware_smoothness(
            disp, img, gamma=2., grey=True, second_order=True)
        if self.loss_ranking is not None:
            if prior is None:
                raise KeyError('loss_ranking needs a depth_prior in the data samples\' metainfo '
                               '(add StereoPseudoDisparity to the pipeline and depth_prior to the meta keys)')
            prior_valid = prior > 0
            if valid is not None:
                prior_valid = prior_valid & (valid[:, 0] > 0)
            losses['loss_mono_ranking'] = self.loss_ranking(1. / disp, prior, prior_valid=prior_valid)
        return losses

    def _depth_prior(self, data_samples: Sequence, device: torch.device) -> Optional[Tensor]:
        """(B, H, W) teacher maps of the ranking loss, None when it is off or they are absent."""
        if self.loss_ranking is None or any('depth_prior' not in s.metainfo for s in data_samples):
            return None
        return torch.stack([torch.as_tensor(s.metainfo['depth_prior'], dtype=torch.float32)
                            for s in data_samples]).to(device)

    # ------------------------------------------------------------------ AugUndo interface

    def extract(self, inputs: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """For :class:`AugUndo`: the monocular logits (B, K, H, W) of the (augmented) target view."""
        img, _ = self._views(inputs)
        return dict(mono_logits=self.forward_mono(img))

    def loss_by_outputs(self, outputs: Dict[str, Tensor], inputs: Dict[str, Tensor], data_samples: Sequence,
                        valid: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
        """For :class:`AugUndo`: the mono stage's losses of undone logits, in the frame of ``inputs``.
        AugUndo wraps the monocular stage only: the stereo and refine stages must be off."""
        stages = self.active_stages()
        if stages != ('mono', ):
            raise RuntimeError(f'AugUndo wraps the monocular stage of TiO-Depth only, but {stages} are active; '
                               'set stage_start_epochs beyond max_epochs for stereo and refine')
        img, partner = self._views(inputs)
        partner = self._partner(partner, 'training')
        direction = self._directions(data_samples, img.device)
        return self._mono_losses(outputs['mono_logits'], img, partner, direction,
                                 self._depth_prior(data_samples, img.device),
                                 None if valid is None else valid['mono_logits'])

    def _half_res_occlusion(self, disp: Tensor, direction: Tensor) -> Tensor:
        """The official ``downscale_occ``: the occlusion mask of the half-resolution disparity."""
        size = disp.shape[-2:]
        half = F.interpolate(disp / 2, [s // 2 for s in size], mode='bilinear', align_corners=False)
        mask = self_occlusion_mask(half, direction, max_disp=self.occlusion_max_disp)
        return F.interpolate(mask, size, mode='bilinear', align_corners=False)

    def _loss_stereo(self, img: Tensor, partner: Tensor, direction: Tensor, cache: dict) -> Dict[str, Tensor]:
        w = self.loss_weights
        feats = self._teacher_features(img, cache)
        with torch.no_grad():
            partner_feats = self.extract_feat(partner)
        mono_logits = self._teacher_mono(img, cache)
        logits, costs = self.forward_stereo(img, partner, direction, feats, partner_feats)
        cache['stereo_logits'] = logits.detach()
        disp = self.expected_disparity(logits)
        with torch.no_grad():
            mono_prob = mono_logits.softmax(1)
            mono_disp = self.expected_disparity(mono_logits)
            mono_recon, inside = warp_by_disparity(partner, mono_disp, direction)
            visible = (self._half_res_occlusion(mono_disp, direction) > 0.8).to(img)
            valid = visible * inside
            # Where the partner cannot show a pixel, the target is the mono reconstruction.
            target = valid * img + (1 - valid) * mono_recon
        recon, _ = warp_by_disparity(partner, disp, direction)
        losses = dict(
            loss_stereo_photo=w['stereo_photo'] * photometric_loss(recon, target, ssim_weight=0.85, l1_weight=0.15),
            loss_stereo_smooth=w['stereo_smooth'] * edge_aware_smoothness(
                disp, img, gamma=2., grey=True, second_order=True))
        for level, cost in sorted(costs.items(), reverse=True):
            teacher = F.interpolate(mono_prob, cost.shape[-2:], mode='bilinear', align_corners=True)
            losses[f'loss_stereo_cost{level}'] = w['stereo_cost'] * self._cost_loss(cost, teacher)
        losses['loss_stereo_grad'] = w['stereo_grad'] * gradient_difference_loss(disp, mono_disp)
        losses['loss_stereo_guide'] = w['stereo_guide'] * ((disp - mono_disp).abs() * (1 - inside)).mean()
        return losses

    def _cost_loss(self, cost: Tensor, teacher: Tensor) -> Tensor:
        """L1 between the softmaxed MFM cost and the mono probabilities, summed over bins, zero below the
        threshold, weighted by the teacher's probability mass in the bins next to its peak."""
        l1 = (cost.softmax(1) - teacher).abs().sum(1, keepdim=True)
        l1 = l1 * (l1 >= self.cost_l1_threshold)
        peak = teacher.argmax(1, keepdim=True)
        num = teacher.shape[1]
        neighbours = torch.cat([peak - 1, peak, peak + 1], 1)
        inside = (neighbours >= 0) & (neighbours < num)
        confidence = (teacher.gather(1, neighbours.clamp(0, num - 1)) * inside).sum(1, keepdim=True)
        return (l1 * confidence).mean()

    def _loss_refine(self, img: Tensor, partner: Tensor, direction: Tensor, cache: dict) -> Dict[str, Tensor]:
        feats = self._teacher_features(img, cache)
        mono_logits = self._teacher_mono(img, cache)
        if 'stereo_logits' not in cache:
            with torch.no_grad():
                cache['stereo_logits'] = self.forward_stereo(img, partner, direction, feats)[0]
        logits = self.forward_refine(img, feats)
        with torch.no_grad():
            stereo_logits = cache['stereo_logits']
            stereo_disp = self.expected_disparity(stereo_logits)
            weight = plane_mask(1 / stereo_disp, self.plane_threshold)
            # The official code takes this mask with the baseline sign opposite to the stereo stage's
            # (tio_depth.py, _postprocess_outputs); kept as released.
            occluded = self._half_res_occlusion(stereo_disp, -direction) < 0.8
            weight = torch.where(occluded, torch.ones_like(weight), weight)
            fused = mono_logits.softmax(1) * (1 - weight) + stereo_logits.softmax(1) * weight
        prob = logits.softmax(1)
        kl = (fused * (torch.log(fused + 1e-5) - torch.log(prob + 1e-5))).sum(1)
        return dict(loss_refine_distill=self.loss_weights['refine_distill'] * kl.mean())

    def loss(self, inputs: Union[Dict[str, Tensor], Tensor], data_samples: Sequence) -> Dict[str, Tensor]:
        """Losses of the active stages in one graph, for a single optimiser (the official update, one optimiser
        per stage, is :func:`perception.engine.stagewise_train_step`)."""
        state = self.prepare_stages(inputs, data_samples)
        losses = {}
        for stage in self.active_stages():
            losses.update(self.stage_loss(stage, state))
        return losses

    def stage_parameters(self) -> Dict[str, Dict[str, List[nn.Parameter]]]:
        """Parameters of each stage's optimiser, by group (official ``params_trained``
        ``Unified-BB*1-CA*1+DE*0.1-MO*1+DE*0.1``): mono trains everything but MFM and the distilled
        branch ("BB"); stereo trains MFM ("CA") and the decoder ("DE"); refine trains the distilled branch
        ("MO") and the decoder. The frozen VGG is in none."""
        groups = self.decoder.parameter_groups()
        special = {id(p) for p in groups['matching'] + groups['distill']}
        if self.vgg is not None:
            special |= {id(p) for p in self.vgg.parameters()}
        base = [p for p in self.parameters() if id(p) not in special and p.requires_grad]
        return dict(
            mono=dict(base=base),
            stereo=dict(matching=groups['matching'], decoder=groups['decoder']),
            refine=dict(distill=groups['distill'], decoder=groups['decoder']))

    # ------------------------------------------------------------------ inference

    def predict(self, inputs: Union[Dict[str, Tensor], Tensor], data_samples: Sequence) -> List:
        """Depth (metres, ``fx * baseline / disparity``) of each mode in ``test_out_modes``, set on the data
        samples as ``pred_depth_<mode>`` (1, H, W) and, for the first mode, ``pred_depth``."""
        img, _ = self._views(inputs)
        focal_baseline = self._focal_baselines(data_samples, img.shape[0], img.device).view(-1, 1, 1, 1)
        for k, mode in enumerate(self.test_out_modes):
            depth = focal_baseline / self.expected_disparity(self.forward_logits(inputs, data_samples, mode))
            for sample, d in zip(data_samples, depth):
                sample.set_field(PixelData(data=d), f'pred_depth_{mode}')
                if k == 0:
                    sample.pred_depth = PixelData(data=d)
        return list(data_samples)

    def _forward(self, inputs: Union[Dict[str, Tensor], Tensor],
                 data_samples: Optional[Sequence] = None) -> Dict[str, Tensor]:
        """Logits (B, K, H, W) of each mode in ``test_out_modes``."""
        return {mode: self.forward_logits(inputs, data_samples, mode) for mode in self.test_out_modes}

    def forward(self, inputs: Union[Dict[str, Tensor], Tensor], data_samples: Optional[Sequence] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f'invalid mode {mode!r}, expected loss, predict or tensor')
