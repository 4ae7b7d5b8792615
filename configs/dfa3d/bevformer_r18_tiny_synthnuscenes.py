# The BEVFormer baseline of dfa3d_bevformer_r18_tiny_synthnuscenes.py: the same model with BEVFormer's 2D deformable
# sampling in the spatial cross-attention (no depth offsets, no depth head, no depth loss).
_base_ = ['./dfa3d_bevformer_r18_tiny_synthnuscenes.py']

model = dict(use_dfa3d=False)
