"""Convert the official DepthMaster release (a local folder) into one perception checkpoint.

The release, Hugging Face ``zysong212/DepthMaster``, is a Marigold pipeline folder read from disk only (nothing is
downloaded): ``model_index.json``, ``unet/`` (SD2's UNet with the Fourier enhancement block as ``fftblock.*``),
``vae/``, ``text_encoder/`` and ``tokenizer/``. The text encoder is run once on the empty prompt and only its
embedding is kept, as the model's ``text_embedding`` buffer, so the checkpoint needs no CLIP at inference.

    python tools/model_converters/depthmaster_to_perception.py DepthMaster/ depthmaster.pth
    python tools/infer_video_depth.py clip.mp4 configs/depthmaster/depthmaster_sd2_stage2.py depthmaster.pth \\
        --out-dir out
"""
import argparse

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from perception.engine.checkpoint import write_checksum
from perception.fileio import atomic_write
from perception.registry import MODELS


def convert(official_dir: str, dst: str, config: str = 'configs/depthmaster/depthmaster_sd2_stage2.py') -> None:
    """Load the official folder into the model of ``config`` and write its state dict to ``dst``."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'perception'))
    cfg.model.official_dir = official_dir
    model = MODELS.build(cfg.model)
    checkpoint = dict(state_dict=model.state_dict(),
                      meta=dict(converted_from=f'official DepthMaster folder {official_dir}', config=config))
    atomic_write(dst, lambda tmp: torch.save(checkpoint, tmp))
    write_checksum(dst)
    print(f'{official_dir} -> {dst}: {len(checkpoint["state_dict"])} tensors')


def main() -> None:
    parser = argparse.ArgumentParser(description='Convert the official DepthMaster folder into a perception '
                                     'checkpoint')
    parser.add_argument('official_dir', help='local Marigold-layout folder (zysong212/DepthMaster)')
    parser.add_argument('dst', help='perception checkpoint to write')
    parser.add_argument('--config', default='configs/depthmaster/depthmaster_sd2_stage2.py',
                        help='config of the model to convert for')
    args = parser.parse_args()
    convert(args.official_dir, args.dst, args.config)


if __name__ == '__main__':
    main()
