"""perception: 3D perception and depth toolbox in the OpenMMLab style."""
from .version import __version__

__all__ = ['__version__']
