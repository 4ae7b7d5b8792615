from .monodetr import MonoDETR
from .monodgp import MonoDGP

__all__ = ['MonoDETR', 'MonoDGP']
from .open import OPEN, ObjectWisePositionEmbedding, lift_object_centers  # noqa: E402

__all__ += ['OPEN', 'ObjectWisePositionEmbedding', 'lift_object_centers']
from .dfa3d_bevformer import BEVFormerEncoder, DFA3DBEVFormer  # noqa: E402

__all__ += ['BEVFormerEncoder', 'DFA3DBEVFormer']
