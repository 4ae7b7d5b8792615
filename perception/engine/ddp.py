"""Distributed training on CPU and GPU alike."""
import os

import torch
import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


# Registered in mmengine's root registry: Runner.wrap_model resolves wrapper types there with a plain
# get(), which reaches neither perception's registry nor a 'perception.' scope prefix.
@MODEL_WRAPPERS.register_module()
class DeviceAgnosticDDP(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that also wraps a CPU module.

    mmengine always passes ``device_ids=[LOCAL_RANK]``, which DDP rejects for a module on the
    CPU (gloo); there the device ids are dropped.
    """

    def __init__(self, module, device_ids=None, **kwargs):
        if not any(p.is_cuda for p in module.parameters()):
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)


def setup_distributed(cfg, launcher: str) -> None:
    """Prepare ``cfg`` for ``launcher``: wrap the model with :class:`DeviceAgnosticDDP`, and
    without CUDA join the process group with gloo before the Runner is built."""
    if launcher == 'none':
        return
    cfg.setdefault('model_wrapper_cfg', dict(type='DeviceAgnosticDDP'))
    if launcher == 'pytorch' and not torch.cuda.is_available():
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
        init_cpu_process_group('gloo')


def init_cpu_process_group(backend: str = 'gloo') -> None:
    """Join the torchrun process group without CUDA.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device``, which fails on a CPU-only build;
    the Runner skips it when a process group already exists.
    """
    if dist.is_initialized():
        return
    dist.init_process_group(
        backend=backend, rank=int(os.environ['RANK']), world_size=int(os.environ['WORLD_SIZE']))
