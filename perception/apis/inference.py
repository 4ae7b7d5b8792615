"""Monocular 3D detection from Python: build a model from a config and a checkpoint, detect on one image."""
import copy
import os.path as osp
from pathlib import Path
from typing import Optional, Tuple, Union

import mmcv
import numpy as np
import torch
from mmdet3d.structures import Box3DMode, CameraInstance3DBoxes
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint
from torch import Tensor, nn

from perception.engine import load_weights, register_checkpoint_loader
from perception.registry import MODELS
from perception.structures import cam2img_to_4x4

# Transforms that read from disk: inference_mono3d hands the image over directly instead.
_LOADERS = ('LoadImageMono3D', 'LoadImageFromFileMono3D', 'LoadAnnotationsMono3D', 'LoadAnnotations3D')


def init_model(config: Union[str, Path, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a model from a config and load a local checkpoint into it.

    Args:
        config: config file or :class:`Config`.
        checkpoint: local checkpoint path; None keeps the initialisation of the config.
        device: where the model runs ('cpu', 'cuda:0' ...).
        cfg_options: overrides merged into the config. Two keys concern the checkpoint: ``load_strict``
            (default True: a checkpoint whose keys or shapes differ from the model's is an error listing them;
            False loads what fits, on purpose) and ``verify_checkpoint`` (default True: check the file against
            the ``.sha256`` beside it, when there is one).

    Returns:
        The model in eval mode, with ``cfg`` (the config) and ``dataset_meta`` (``classes`` from the
        checkpoint's meta, else from the config) attached.
    """
    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    elif not isinstance(config, Config):
        raise TypeError(f'config must be a file path or a Config, got {type(config).__name__}')
    config = copy.deepcopy(config)
    if cfg_options is not None:
        config.merge_from_dict(cfg_options)
    init_default_scope(config.get('default_scope', 'perception'))
    register_checkpoint_loader(verify=config.get('verify_checkpoint', True))
    model = MODELS.build(config.model)
    dataset_meta = {'classes': config.get('class_names', None)}
    if checkpoint is not None:
        ckpt = _load_checkpoint(checkpoint, map_location='cpu')
        load_weights(model, ckpt, checkpoint, strict=config.get('load_strict', True))
        dataset_meta = ckpt.get('meta', {}).get('dataset_meta', dataset_meta)
    model.cfg = config
    model.dataset_meta = dataset_meta
    return model.to(device).eval()


def inference_mono3d(model: nn.Module, image: Union[str, np.ndarray],
                     cam2img: Union[np.ndarray, list]) -> Tuple[CameraInstance3DBoxes, Tensor, Tensor]:
    """Detect 3D objects in one image with the test pipeline of the model's config.

    Args:
        model: a model from :func:`init_model`.
        image: image file, or (H, W, 3) uint8 BGR array (as ``cv2.imread`` gives).
        cam2img: (3, 3), (3, 4) or (4, 4) projection of the image (KITTI ``P2``), pixels.

    Returns:
        ``bboxes_3d`` (N boxes in the camera frame of ``image``: x, y, z bottom centre, l, h, w, yaw;
        metres and radians), ``scores`` (N,) and ``labels`` (N,) indices into
        ``model.dataset_meta['classes']``, on the CPU.
    """
    if isinstance(image, (str, Path)):
        if not osp.isfile(str(image)):
            raise FileNotFoundError(f'{image}: no such image file')
        img_path = str(image)
        image = mmcv.imread(img_path)
        if image is None:
            raise ValueError(f'{img_path}: cannot decode the image')
    else:
        img_path = ''
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'image must be a file or an (H, W, 3) array, got {getattr(image, "shape", image)}')
    cam2img = cam2img_to_4x4(np.asarray(cam2img, dtype=np.float64))
    if not np.isfinite(cam2img).all():
        raise ValueError(f'cam2img holds non-finite values: {cam2img.tolist()}')

    init_default_scope(model.cfg.get('default_scope', 'perception'))
    pipeline = Compose([t for t in model.cfg.test_dataloader.dataset.pipeline if t['type'] not in _LOADERS])
    data = pipeline(
        dict(img=image, img_path=img_path, img_shape=image.shape[:2], ori_shape=image.shape[:2], cam2img=cam2img,
             ori_cam2img=cam2img.copy(), img_aug_matrix=np.eye(3), box_type_3d=CameraInstance3DBoxes,
             box_mode_3d=Box3DMode.CAM))
    with torch.no_grad():
        result = model.test_step(pseudo_collate([data]))[0].pred_instances_3d.to('cpu')
    return result.bboxes_3d, result.scores_3d, result.labels_3d
