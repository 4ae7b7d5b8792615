"""What ``tools/train.py`` and ``tools/test.py`` share: the config on the command line, and the Runner built
from it."""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction

from perception.registry import RUNNERS
from .ddp import setup_distributed
from .runner import Runner


def config_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the config path, ``--work-dir``, ``--cfg-options`` and the launcher options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--work-dir', help='directory of logs, checkpoints and metrics (default: ./work_dirs/<config name>)')
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
    return parser


def load_config(args: argparse.Namespace) -> Config:
    """The config of ``args.config`` with ``--cfg-options`` merged in, its launcher and its work dir set.

    Also exports ``LOCAL_RANK`` from ``--local_rank`` for launchers that pass it as an argument
    (``torch.distributed.launch``); torchrun sets the variable itself.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_runner(cfg: Config):
    """Set up the process group of ``cfg.launcher`` and build the config's runner (perception's ``Runner``
    unless ``runner_type`` names another)."""
    setup_distributed(cfg, cfg.launcher)
    return RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
