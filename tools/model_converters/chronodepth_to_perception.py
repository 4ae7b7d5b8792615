"""Convert the official ChronoDepth release (local diffusers folders) into one perception checkpoint.

The release is two Hugging Face folders, read from disk only (nothing is downloaded):

- the fine-tuned UNet, ``jhshao/ChronoDepth-v1``: ``config.json`` + ``diffusion_pytorch_model.safetensors``;
- the SVD pipeline it plugs into, ``jhshao/ChronoDepth`` (or ``stabilityai/stable-video-diffusion-img2vid-xt``)
  as its ``model_index.json`` lays it out: ``vae/``, ``scheduler/``, ``image_encoder/``, ``feature_extractor/``
  (its ``unet/`` is not read).

fp16 (``*.fp16.safetensors``) or fp32 files; the weights are stored as float32. The CLIP image encoder is run
once on the all-zeros image (the official pipeline discards the image) and only its embedding is kept, as the
model's ``image_embedding`` buffer, so the checkpoint needs no CLIP at inference.

    python tools/model_converters/chronodepth_to_perception.py ChronoDepth-v1/ ChronoDepth/ chronodepth_v1.pth
    python tools/infer_video_depth.py clip.mp4 configs/chronodepth/chronodepth_svd_official.py chronodepth_v1.pth \\
        --out-dir out
"""
import argparse

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from perception.engine.checkpoint import write_checksum
from perception.fileio import atomic_write
from perception.registry import MODELS


def convert(unet_dir: str, base_dir: str, dst: str,
            config: str = 'configs/chronodepth/chronodepth_svd_official.py') -> None:
    """Load the official folders into the model of ``config`` and write its state dict to ``dst``."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'perception'))
    cfg.model.official_dirs = dict(unet=unet_dir, base=base_dir)
    model = MODELS.build(cfg.model)
    checkpoint = dict(state_dict=model.state_dict(),
                      meta=dict(converted_from=f'official ChronoDepth folders {unet_dir} (UNet) and {base_dir} '
                                f'(SVD VAE, scheduler, CLIP)', config=config))
    atomic_write(dst, lambda tmp: torch.save(checkpoint, tmp))
    write_checksum(dst)
    print(f'{unet_dir} + {base_dir} -> {dst}: {len(checkpoint["state_dict"])} tensors')


def main() -> None:
    parser = argparse.ArgumentParser(description='Convert the official ChronoDepth folders into a perception '
                                     'checkpoint')
    parser.add_argument('unet_dir', help='local folder of the fine-tuned UNet (jhshao/ChronoDepth-v1)')
    parser.add_argument('base_dir', help='local SVD pipeline folder with model_index.json (jhshao/ChronoDepth)')
    parser.add_argument('dst', help='perception checkpoint to write')
    parser.add_argument('--config', default='configs/chronodepth/chronodepth_svd_official.py',
                        help='config of the model to convert for')
    args = parser.parse_args()
    convert(args.unet_dir, args.base_dir, args.dst, args.config)


if __name__ == '__main__':
    main()
