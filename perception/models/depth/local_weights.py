"""Weights of the diffusion depth models (ChronoDepth, DepthMaster) from local files only: the safetensors of a
diffusers/transformers folder, and embeddings stored as ``.npy``."""
import os.path as osp
from typing import Sequence

import numpy as np
import torch

from perception.fileio import InvalidInputError

# Safetensors files of a diffusers/transformers folder, the full-precision name first; fp16 files load as float32.
WEIGHT_FILES = {
    'diffusers': ('diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors'),
    'transformers': ('model.safetensors', 'model.fp16.safetensors'),
}


def weight_file(folder: str, kind: str) -> str:
    """The safetensors file of a ``kind`` ('diffusers' or 'transformers') folder."""
    for name in WEIGHT_FILES[kind]:
        if osp.isfile(osp.join(folder, name)):
            return osp.join(folder, name)
    raise FileNotFoundError(f'{folder}: none of {", ".join(WEIGHT_FILES[kind])} (a diffusers-format folder holds '
                            'its config.json and one of them; sharded checkpoints are not supported)')


def load_folder(module: torch.nn.Module, folder: str, kind: str) -> None:
    """Load the safetensors weights of a diffusers/transformers folder into ``module`` (exact fit, float32)."""
    from safetensors.torch import load_file
    path = weight_file(folder, kind)
    state = {k: v.float() for k, v in load_file(path).items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise InvalidInputError(f'{path} does not fit the {type(module).__name__} of the config: {error}') from None


def read_embedding(path: str, shape: Sequence[int], what: str) -> torch.Tensor:
    """A finite float32 embedding of ``shape`` from a ``.npy`` file holding it with or without its leading
    batch axis of 1."""
    shape = tuple(shape)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such {what} file')
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise InvalidInputError(f'{path}: not a .npy array ({error})') from None
    if array.shape not in (shape, shape[1:]) or not np.isfinite(array).all():
        raise InvalidInputError(f'{path}: expected a finite {shape} or {shape[1:]} embedding, got {array.dtype} '
                                f'{array.shape}')
    return torch.from_numpy(array.astype(np.float32)).view(shape)
