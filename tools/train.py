"""Train a model from a config: ``python tools/train.py configs/X.py [--work-dir DIR] [--resume]``."""
import logging

import torch
from mmengine.logging import print_log

from perception.engine import build_runner, config_parser, load_config


def parse_args():
    parser = config_parser('Train a model')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true', help='scale the learning rate by the batch size')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or, with no path, from the newest checkpoint of the work dir '
        'that verifies against its .sha256 (newer ones that do not are skipped with a warning)')
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_config(args)

    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') in ('AmpOptimWrapper', 'CPUAmpOptimWrapper'):
            print_log('AMP training is already enabled in the config.', logger='current',
                      level=logging.WARNING)
        elif torch.cuda.is_available():
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
        else:
            cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError('--auto-scale-lr needs `auto_scale_lr.base_batch_size` in the '
                               f'config {args.config}')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    build_runner(cfg).train()


if __name__ == '__main__':
    main()
