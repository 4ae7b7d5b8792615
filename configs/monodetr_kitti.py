# The documented main command, `python tools/train.py configs/monodetr_kitti.py`: MonoDETR on KITTI with the
# official defaults (configs/monodetr/README.md).
_base_ = ['./monodetr/monodetr_r50_195e_kitti-mono3d.py']
