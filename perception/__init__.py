"""perception: 3D perception and depth toolbox in the OpenMMLab style."""
import torch  # noqa: F401  (loads libc10/libtorch, which perception._ext links against)

from .version import __version__

__all__ = ['__version__']
