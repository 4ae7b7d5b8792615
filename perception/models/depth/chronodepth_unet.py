"""SVD's spatio-temporal UNet with one diffusion timestep per frame (ChronoDepth, CVPR 2025; the official
``chronodepth/unet_chronodepth.py`` of jiahao-shao1/ChronoDepth). Kept apart from :mod:`.chronodepth` because
diffusers takes seconds to import: it is imported when a ChronoDepth model is built."""
from typing import Union

import torch
from diffusers import UNetSpatioTemporalConditionModel
from torch import Tensor


class PerFrameTimestepUNet(UNetSpatioTemporalConditionModel):
    """SVD's UNet where each frame has its own diffusion timestep.

    Differs from diffusers' ``UNetSpatioTemporalConditionModel.forward`` only in the conditioning: the timestep
    embedding is computed for a (B, F) timestep tensor (not one per video repeated over its frames) and the
    image embedding is given per frame. With equal timesteps and embeddings it equals the original.
    """

    def forward(self, sample: Tensor, timestep: Union[Tensor, float], encoder_hidden_states: Tensor,
                added_time_ids: Tensor) -> Tensor:
        """
        Args:
            sample: (B, F, C_in, h, w) latents.
            timestep: (B, F), (F, ) (the same for each video) or a scalar.
            encoder_hidden_states: (B * F, L, D) per frame, or (B, L, D) repeated over the frames.
            added_time_ids: (B, 3): fps - 1, motion bucket id, noise augmentation strength.

        Returns:
            (B, F, C_out, h, w).
        """
        batch, frames = sample.shape[:2]
        timesteps = torch.as_tensor(timestep, device=sample.device)
        timesteps = timesteps.expand(batch, frames).reshape(-1)
        emb = self.time_embedding(self.time_proj(timesteps).to(sample.dtype))
        time_embeds = self.add_time_proj(added_time_ids.flatten()).reshape(batch, -1).to(emb.dtype)
        emb = emb + self.add_embedding(time_embeds).repeat_interleave(frames, dim=0)
        if encoder_hidden_states.shape[0] == batch and frames > 1:
            encoder_hidden_states = encoder_hidden_states.repeat_interleave(frames, dim=0)
        if encoder_hidden_states.shape[0] != batch * frames:
            raise ValueError(f'encoder_hidden_states of {encoder_hidden_states.shape[0]} rows for {batch} videos '
                             f'of {frames} frames')
        image_only_indicator = sample.new_zeros(batch, frames)
        blocks = dict(temb=emb, image_only_indicator=image_only_indicator)
        cross = dict(blocks, encoder_hidden_states=encoder_hidden_states)

        # Upsampling to the skip's size, as diffusers does for sides that are not multiples of 2^upsamplers.
        odd_size = any(side % 2**self.num_upsamplers for side in sample.shape[-2:])
        x = self.conv_in(sample.flatten(0, 1))
        skips = (x, )
        for block in self.down_blocks:
            x, res = block(hidden_states=x, **(cross if getattr(block, 'has_cross_attention', False) else blocks))
            skips += res
        x = self.mid_block(hidden_states=x, **cross)
        for block in self.up_blocks:
            res, skips = skips[-len(block.resnets):], skips[:-len(block.resnets)]
            x = block(hidden_states=x, res_hidden_states_tuple=res,
                      upsample_size=skips[-1].shape[2:] if odd_size and skips else None,
                      **(cross if getattr(block, 'has_cross_attention', False) else blocks))
        x = self.conv_out(self.conv_act(self.conv_norm_out(x)))
        return x.reshape(batch, frames, *x.shape[1:])
