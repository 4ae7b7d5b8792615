"""Test a checkpoint: ``python tools/test.py configs/X.py CKPT [--show-dir DIR] [--format-only]``."""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction

from perception.engine import setup_distributed
from perception.registry import RUNNERS


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save evaluation metrics')
    parser.add_argument(
        '--show-dir', help='directory where painted predictions are saved (under the work dir)')
    parser.add_argument('--show', action='store_true', help='show predictions in a window')
    parser.add_argument('--score-thr', type=float, default=0.1, help='score threshold to draw')
    parser.add_argument(
        '--format-only',
        action='store_true',
        help='write results in the benchmark submission format without evaluating')
    parser.add_argument(
        '--out-dir', help='where --format-only writes (default: <work-dir>/results)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs (xxx=yyy) merged into it')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError('--show and --show-dir need a `visualization` hook in '
                           '`default_hooks` of the config')
    hook = default_hooks['visualization']
    hook['draw'] = True
    hook['score_thr'] = args.score_thr
    if args.show:
        hook['show'] = True
    if args.show_dir:
        hook['test_out_dir'] = args.show_dir
    return cfg


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.format_only:
        evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [
            cfg.test_evaluator
        ]
        for evaluator in evaluators:
            evaluator['format_only'] = True
            evaluator['outfile_prefix'] = args.out_dir or osp.join(cfg.work_dir, 'results')

    setup_distributed(cfg, args.launcher)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else RUNNERS.get('Runner').from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    main()
