"""Mixed precision without CUDA."""
from contextlib import contextmanager
from typing import Union

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from perception.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Automatic mixed precision on the CPU: the forward runs under ``torch.autocast('cpu')`` in
    bfloat16, which has float32's exponent range and so needs no loss scaling.

    mmengine's ``AmpOptimWrapper`` asserts a GPU; ``tools/train.py --amp`` picks this wrapper when
    CUDA is absent.
    """

    def __init__(self, dtype: Union[str, torch.dtype] = 'bfloat16', **kwargs):
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast('cpu', dtype=self.cast_dtype):
            yield
