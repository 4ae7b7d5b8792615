"""Deterministic synthetic weights of an official model, for parity tests against its recorded outputs.

The parity fixtures of MonoDETR and MonoDGP (``tests/data/parity``, described in
``../shared/oracles/parity/README.md``) were made with weights that are a function of each official
parameter name, its shape and a seed, so that nobody needs the official code or a trained checkpoint to
reproduce them. For every entry of the official state dict, in its order::

    value = default_rng(crc32(key) + seed).uniform(lo, hi, size=shape).astype(float32)

with ``(lo, hi)`` given by the first rule that matches: a value stored in the shapes file (``const``,
the fixed depth-bin centres); ``running_mean`` (-0.1, 0.1); ``running_var`` (0.5, 1.5); the weight of a
normalisation layer (0.5, 1.5); an embedding table or level embedding (-sqrt(3), sqrt(3)); any other
tensor of 2 or more dimensions (-b, b) with ``b = 1 / sqrt(prod(shape[1:]))``; everything else
(-0.1, 0.1). A tied tensor registered under several names (``alias_of``) takes the value of its
canonical name.
"""
import hashlib
import json
import math
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from perception.structures import cam2img_to_4x4, crop_scale_matrix, transform_cam2img

# the class order of the official models' logits
OFFICIAL_CLASSES = ('Pedestrian', 'Car', 'Cyclist')


def _bounds(key: str, spec: dict) -> Tuple[float, float]:
    """``(lo, hi)`` of the uniform draw of one entry (the rules after ``const``)."""
    if key.endswith('running_mean'):
        return -0.1, 0.1
    if key.endswith('running_var'):
        return 0.5, 1.5
    if spec.get('norm_weight'):
        return 0.5, 1.5
    if spec.get('embedding'):
        return -math.sqrt(3), math.sqrt(3)
    shape = spec['shape']
    if len(shape) >= 2:
        bound = 1 / math.sqrt(int(np.prod(shape[1:])))
        return -bound, bound
    return -0.1, 0.1


def parity_state_dict(shapes: Union[str, Path, dict], seed: int) -> 'OrderedDict[str, np.ndarray]':
    """The official state dict of the parity fixtures, in the order of the shapes file.

    Args:
        shapes: a ``shapes/<model>_shapes.json`` file (or its parsed content): ``state_dict`` maps every
            official key to ``shape``, ``dtype`` and the flags ``norm_weight``, ``embedding``, ``const``
            and ``alias_of``.
        seed: the fixture's seed.

    Returns:
        {official key: float32 array}; aliases share the canonical key's values.
    """
    if not isinstance(shapes, dict):
        with open(shapes) as f:
            shapes = json.load(f)
    entries = shapes['state_dict']
    state_dict = OrderedDict()
    for key, spec in entries.items():
        if spec.get('alias_of') is not None:
            continue
        if spec.get('dtype', 'float32') != 'float32':
            raise ValueError(f'{key}: only float32 entries are drawn, got {spec["dtype"]}')
        shape = tuple(spec['shape'])
        if spec.get('const') is not None:
            state_dict[key] = np.asarray(spec['const'], dtype=np.float32).reshape(shape)
            continue
        low, high = _bounds(key, spec)
        rng = np.random.default_rng(zlib.crc32(key.encode('utf-8')) + seed)
        state_dict[key] = rng.uniform(low, high, size=shape).astype(np.float32)
    ordered = OrderedDict()
    for key, spec in entries.items():
        canonical = spec.get('alias_of') or key
        if canonical not in state_dict:
            raise KeyError(f'{key} is an alias of {canonical}, which the shapes file does not draw')
        ordered[key] = state_dict[canonical]
    return ordered


def state_dict_checksum(state_dict: Dict[str, np.ndarray]) -> Tuple[str, float]:
    """The fixtures' checksum of a state dict: the first 16 hex digits of the sha256 over the key bytes and
    the array bytes of every entry in order, and the float64 sum of all values."""
    digest = hashlib.sha256()
    total = 0.
    for key, value in state_dict.items():
        value = np.ascontiguousarray(value)
        digest.update(key.encode('utf-8'))
        digest.update(value.tobytes())
        total += float(value.astype(np.float64).sum())
    return digest.hexdigest()[:16], total


def fixture_metainfo(inputs: Dict[str, np.ndarray], p2: np.ndarray) -> dict:
    """The data sample metainfo of a parity fixture's input, as the official-behaviour test pipeline gives it.

    Args:
        inputs: the fixture's ``inputs.npz`` (``image`` (1, 3, H, W), ``img_size`` (1, 2) original (W, H)).
        p2: the frame's ``P2`` (the fixture's ``*_calib_kitti.txt``), (3, 4) or (4, 4).

    Returns:
        ``ori_cam2img`` (the unadjusted ``P2``), ``ori_shape``, ``img_shape`` and the camera after the
        centred scale into the input (``cam2img``, ``img_aug_matrix``).
    """
    width, height = (int(v) for v in inputs['img_size'][0])
    out_size = tuple(int(v) for v in inputs['image'].shape[:-3:-1])
    ori_cam2img = cam2img_to_4x4(np.asarray(p2, dtype=np.float64))
    matrix = crop_scale_matrix((width / 2, height / 2), (width, height), out_size)
    return dict(ori_cam2img=ori_cam2img, cam2img=transform_cam2img(ori_cam2img, matrix), img_aug_matrix=matrix,
                ori_shape=(height, width), img_shape=out_size[::-1], box_type_3d='camera')


def official_outputs(outputs: Dict[str, Tensor], class_names: Sequence[str]) -> Dict[str, np.ndarray]:
    """The raw outputs of :meth:`perception.models.detectors.MonoDETR.raw_outputs` (or MonoDGP's) under the
    keys and conventions of the fixtures' ``outputs.npz`` / ``train_outputs.npz``: the logits in the
    official class order, the 3D sizes as (h, w, l), the last decoder layer as ``pred_*`` and the others
    as ``aux{l}_pred_*``; MonoDGP's 2D decoder as ``inter{l}_pred_*`` and its region probabilities as
    ``pred_region_prob{l}``."""
    order = [list(class_names).index(name) for name in OFFICIAL_CLASSES]
    num_layers = outputs['cls_scores'].shape[0]

    def numpy(value: Tensor) -> np.ndarray:
        return value.detach().cpu().numpy()

    arrays = {'pred_depth_map_logits': numpy(outputs['depth_logits'])}
    for layer in range(num_layers):
        prefix = 'pred_' if layer == num_layers - 1 else f'aux{layer}_pred_'
        arrays.update({
            prefix + 'logits': numpy(outputs['cls_scores'][layer][..., order]),
            prefix + 'boxes': numpy(outputs['boxes'][layer]),
            prefix + '3d_dim': numpy(outputs['dims'][layer][..., [1, 2, 0]]),
            prefix + 'depth': numpy(outputs['depths'][layer]),
            prefix + 'angle': numpy(outputs['angles'][layer]),
        })
    for layer, (scores, boxes) in enumerate(zip(outputs.get('cls_scores_2d', ()), outputs.get('boxes_2d', ()))):
        arrays[f'inter{layer}_pred_logits'] = numpy(scores[..., order])
        arrays[f'inter{layer}_pred_boxes'] = numpy(boxes)
    for level, prob in enumerate(outputs.get('region_probs', ())):
        arrays[f'pred_region_prob{level}'] = numpy(prob)
    return arrays


def official_state_dict_file(shapes: Union[str, Path], seed: int, path: Union[str, Path]) -> None:
    """Write the fixture weights as the official trainer saves a checkpoint, ``{'model_state': state dict}``
    (aliases sharing their canonical tensor)."""
    tensors = {}
    state_dict = OrderedDict()
    for key, value in parity_state_dict(shapes, seed).items():
        state_dict[key] = tensors.setdefault(id(value), torch.from_numpy(value))
    torch.save({'model_state': state_dict}, str(path))
