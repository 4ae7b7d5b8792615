from .monodetr import MonoDETR
from .monodgp import MonoDGP

__all__ = ['MonoDETR', 'MonoDGP']
