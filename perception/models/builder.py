"""Building pieces shared by the detectors and the depth models."""
import warnings

from torch import nn

from perception.registry import MODELS


def build_backbone(cfg: dict, owner: str) -> nn.Module:
    """Build a backbone from its config; pretrained weights come only from its ``init_cfg``
    (``dict(type='Pretrained', checkpoint=LOCAL_PATH)``, loaded by ``init_weights``; a missing file fails
    there, naming it). Without an ``init_cfg`` the backbone starts from a random initialisation, which
    ``owner`` (the model's name) warns about once here."""
    if cfg.get('init_cfg') is None:
        warnings.warn(f'{owner}: the backbone has no init_cfg and starts from a random initialisation',
                      UserWarning, stacklevel=3)
    return MODELS.build(cfg)
