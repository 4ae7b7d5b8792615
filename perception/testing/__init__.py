"""Helpers that build inputs for tests and benchmarks (as ``mmdet.testing``)."""
from .mono3d import mono3d_sample

__all__ = ['mono3d_sample']
