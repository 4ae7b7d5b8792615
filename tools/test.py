"""Test a checkpoint: ``python tools/test.py configs/X.py CKPT [--show-dir DIR] [--format-only]``.

The checkpoint must fit the model: missing, unexpected or reshaped weights are an error that lists them
(``--cfg-options load_strict=False`` loads what fits, on purpose), and a checkpoint with a ``.sha256`` beside
it must match it (``--cfg-options verify_checkpoint=False`` skips the check).
"""
import os.path as osp

from perception.engine import build_runner, config_parser, load_config


def parse_args():
    parser = config_parser('Test (and evaluate) a model')
    parser.add_argument('checkpoint', help='checkpoint file (must fit the model; see load_strict above)')
    parser.add_argument(
        '--show-dir',
        help='directory where painted predictions are saved (a relative one under <work-dir>/<timestamp>/)')
    parser.add_argument('--show', action='store_true', help='show predictions in a window')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.1,
        help="draw predictions scoring at least this (the model's test_cfg.score_thr has dropped those below its own)")
    parser.add_argument(
        '--format-only',
        action='store_true',
        help='write results in the benchmark submission format without evaluating')
    parser.add_argument(
        '--out-dir', help='where --format-only writes (default: <work-dir>/results)')
    return parser.parse_args()


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
    cfg = load_config(args)
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

    build_runner(cfg).test()


if __name__ == '__main__':
    main()
