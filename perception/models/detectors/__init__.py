from .monodetr import MonoDETR

__all__ = ['MonoDETR']
