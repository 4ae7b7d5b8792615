"""MonoDGP's training iteration and inference on the CPU against the backbone-only floor of the same run, for the
official config (configs/monodgp/monodgp_r50_250e_kitti-mono3d.py: ResNet-50, 1280x384, 256 channels, 50 x 11
queries, dropout 0.1, the decoders' self-attention over all groups as the official code) and its CPU config
(configs/monodgp/monodgp_r18_demo_synthkitti-mono3d.py: ResNet-18, 480x144), timed as
``benchmarks/models/monodetr.py`` does (same options).

    python benchmarks/models/monodgp.py [--repeat 3] [--threads 2] [--batch 2] [--profile] [--mmcv] [--flops] [--amp]

The last line is ``monodgp step/backbone train=<x> infer=<y>``, the official config's ratios.
"""
from monodetr import run

CONFIGS = ('configs/monodgp/monodgp_r50_250e_kitti-mono3d.py', 'configs/monodgp/monodgp_r18_demo_synthkitti-mono3d.py')

if __name__ == '__main__':
    run('monodgp', CONFIGS, __doc__.split('\n')[0])
