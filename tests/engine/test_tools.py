"""tools/train.py, tools/test.py, tools/dist_train.sh and tools/dist_test.sh through the real mmengine Runner."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from perception.engine import Runner, config_parser, load_config, load_from_local

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / 'tests' / 'engine' / 'toy_config.py')


def run_tool(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    return proc


def build_runner(work_dir, **overrides):
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(work_dir)
    cfg.merge_from_dict(overrides)
    return Runner.from_cfg(cfg)


def weights(path):
    return load_from_local(str(path), map_location='cpu')['state_dict']


def test_train_resume_is_bit_exact(tmp_path):
    # Uninterrupted: 4 epochs.
    build_runner(tmp_path / 'full').train()
    # Killed after the checkpoint of epoch 2 (before its validation), then resumed.
    interrupted = build_runner(tmp_path / 'part',
                               custom_hooks=[dict(type='InterruptAfterEpoch', epoch=2)])
    with pytest.raises(KeyboardInterrupt):
        interrupted.train()
    ckpt = tmp_path / 'part' / 'epoch_2.pth'
    assert ckpt.is_file() and not (tmp_path / 'part' / 'epoch_3.pth').exists()
    build_runner(tmp_path / 'part', resume=True, load_from=str(ckpt)).train()

    full = weights(tmp_path / 'full' / 'epoch_4.pth')
    resumed = weights(tmp_path / 'part' / 'epoch_4.pth')
    assert full.keys() == resumed.keys()
    for key in full:
        assert torch.equal(full[key], resumed[key]), key
    # Training moved the weights at all (otherwise equality would prove nothing).
    first = weights(tmp_path / 'part' / 'epoch_2.pth')
    assert not torch.equal(first['net.0.weight'], full['net.0.weight'])


def test_upstream_bug_mmengine_resume_diverges(tmp_path):
    """Without the epoch seeding, mmengine's resume is not exact on this task (numpy noise in the
    dataset, dropout in the model): what makes the test above meaningful."""
    from mmengine.runner import Runner as MMEngineRunner

    def build(work_dir, **overrides):
        cfg = Config.fromfile(CONFIG)
        cfg.work_dir = str(work_dir)
        cfg.merge_from_dict(overrides)
        return MMEngineRunner.from_cfg(cfg)

    build(tmp_path / 'full').train()
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path / 'part', custom_hooks=[dict(type='InterruptAfterEpoch', epoch=2)]).train()
    build(tmp_path / 'part', resume=True, load_from=str(tmp_path / 'part' / 'epoch_2.pth')).train()
    full = weights(tmp_path / 'full' / 'epoch_4.pth')
    resumed = weights(tmp_path / 'part' / 'epoch_4.pth')
    assert not torch.equal(full['net.0.weight'], resumed['net.0.weight'])


@pytest.mark.slow
def test_train_and_test_tools(tmp_path):
    work = tmp_path / 'work'
    proc = run_tool(sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work),
                    '--cfg-options', 'train_cfg.max_epochs=2')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / 'epoch_2.pth').is_file()
    assert (work / 'last_checkpoint').read_text().strip().endswith('epoch_2.pth')

    proc = run_tool(sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work),
                    '--resume', '--cfg-options', 'train_cfg.max_epochs=3')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'resumed epoch: 2' in proc.stdout + proc.stderr
    assert (work / 'epoch_3.pth').is_file()

    proc = run_tool(sys.executable, 'tools/test.py', CONFIG, str(work / 'epoch_3.pth'),
                    '--work-dir', str(tmp_path / 'test'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'toy/mse:' in proc.stdout + proc.stderr


@pytest.mark.slow
def test_upstream_message_names_the_mistyped_type(tmp_path):
    proc = run_tool(sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path),
                    '--cfg-options', 'model.type=ToyRegresor')
    assert proc.returncode != 0
    assert 'ToyRegresor is not in the' in proc.stderr


@pytest.mark.slow
def test_dist_train_two_cpu_processes(tmp_path):
    work = tmp_path / 'ddp'
    env_port = str(29500 + os.getpid() % 1000)
    env = dict(os.environ, PORT=env_port, PYTHON=sys.executable,
               PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(work),
                           '--cfg-options', 'train_cfg.max_epochs=2'],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert (work / 'epoch_2.pth').is_file()
    # 32 samples over 2 processes x 4 per batch: 4 iterations per epoch (8 on one process).
    assert 'Epoch(train) [2][4/4]' in log


@pytest.mark.slow
def test_dist_test_two_cpu_processes(tmp_path):
    build_runner(tmp_path / 'train', train_cfg=dict(max_epochs=1)).train()
    env = dict(os.environ, PORT=str(29500 + (os.getpid() + 500) % 1000), PYTHON=sys.executable,
               PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run(['bash', 'tools/dist_test.sh', CONFIG, str(tmp_path / 'train' / 'epoch_1.pth'), '2',
                           '--work-dir', str(tmp_path / 'test')],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'Distributed launcher: pytorch' in log and 'toy/mse:' in log


def test_config_options_and_default_work_dir(monkeypatch):
    # set, then deleted: monkeypatch then also undoes what load_config exports
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.delenv('LOCAL_RANK')
    args = config_parser('test').parse_args(
        [CONFIG, '--cfg-options', 'train_cfg.max_epochs=7', '--local-rank', '3'])
    cfg = load_config(args)
    assert cfg.train_cfg.max_epochs == 7 and cfg.launcher == 'none'
    assert cfg.work_dir == osp.join('./work_dirs', 'toy_config')
    assert os.environ['LOCAL_RANK'] == '3'
    args = config_parser('test').parse_args([CONFIG, '--work-dir', 'elsewhere'])
    assert load_config(args).work_dir == 'elsewhere'


@pytest.mark.slow
def test_show_dir_draws_monodetr_frames_with_the_original_camera(tmp_path):
    """--show-dir through the real Runner and a mono-3D config: one picture per frame, named after the KITTI
    frame, with the ground truth where the file's P2 projects it (random weights: predictions are noise)."""
    import cv2
    from mmengine.registry import init_default_scope

    from perception.datasets.converters.kitti_converter import create_kitti_infos
    from perception.datasets.synthetic import generate_kitti_object
    from perception.fileio import read_calib_file, read_label_file
    from perception.registry import MODELS
    from perception.structures.camera import project_points
    from perception.visualization import camera_box_corners

    root = tmp_path / 'world'
    generate_kitti_object(str(root), num_train=1, num_val=2, seed=0, workers=1, progress=False)
    create_kitti_infos(str(root))
    config = 'configs/monodetr/monodetr_r18_demo_synthkitti-mono3d.py'
    init_default_scope('perception')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(REPO / config).model)
    model.init_weights()
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'random.pth')
    data = f'{root}/'
    proc = run_tool(sys.executable, 'tools/test.py', config, str(tmp_path / 'random.pth'), '--work-dir',
                    str(tmp_path / 'work'), '--show-dir', str(tmp_path / 'show'), '--score-thr', '0',
                    '--cfg-options', f'test_dataloader.dataset.data_root={data}',
                    f'test_evaluator.0.ann_dir={data}training/label_2',
                    f'test_evaluator.1.ann_dir={data}training/label_2',
                    'test_dataloader.num_workers=0',
                    'test_dataloader.persistent_workers=False', 'model.test_cfg.score_thr=0')
    assert proc.returncode == 0, proc.stderr[-3000:]
    frames = (root / 'ImageSets' / 'val.txt').read_text().split()
    assert sorted(p.name for p in (tmp_path / 'show').iterdir()) == [f'{frame}.png' for frame in frames]
    checked = 0
    for frame in frames:
        image = cv2.imread(str(root / 'training' / 'image_2' / f'{frame}.png'))
        picture = cv2.imread(str(tmp_path / 'show' / f'{frame}.png'))
        height, width = image.shape[:2]
        assert picture.shape == (height, width + height, 3)
        labels = read_label_file(root / 'training' / 'label_2' / f'{frame}.txt')
        keep = np.isin(labels['name'], ['Pedestrian', 'Cyclist', 'Car'])
        boxes = np.concatenate([labels['location'], labels['dimensions'][:, [2, 0, 1]],
                                labels['rotation_y'][:, None]], 1)[keep]
        P2 = read_calib_file(root / 'training' / 'calib' / f'{frame}.txt')['P2']
        changed = (picture[:, :width] != image).any(-1)
        corners = camera_box_corners(boxes).reshape(-1, 3)
        for u, v in np.round(project_points(corners[corners[:, 2] > 1], P2)).astype(int):
            if 1 <= u < width - 1 and 1 <= v < height - 1:
                assert changed[v - 1:v + 2, u - 1:u + 2].any(), (frame, u, v)
                checked += 1
    assert checked >= 8


def test_amp_on_cpu_autocasts_to_bfloat16():
    from perception.engine import CPUAmpOptimWrapper
    model = torch.nn.Linear(4, 2)
    wrapper = CPUAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    assert model(torch.randn(3, 4)).dtype == torch.float32


@pytest.mark.parametrize('has_bf16', [True, False])
def test_main_job_trains_in_float32_without_bfloat16_units(monkeypatch, has_bf16):
    """The main job's config autocasts to bfloat16; on a CPU without AMX / AVX512-BF16 the job overrides it."""
    from mmengine.optim import OptimWrapper, build_optim_wrapper
    from mmengine.registry import init_default_scope

    from perception.engine import CPUAmpOptimWrapper
    spec = importlib.util.spec_from_file_location('main_job', REPO / 'tools/demo/main_job.py')
    main_job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main_job)
    monkeypatch.setattr(main_job, 'cpu_has_bf16', lambda: has_bf16)
    cfg = Config.fromfile(REPO / main_job.CONFIG)
    cfg.merge_from_dict(dict(option.split('=', 1) for option in main_job.precision_options()))
    init_default_scope('perception')
    wrapper = build_optim_wrapper(torch.nn.Linear(4, 2), cfg.optim_wrapper)
    assert isinstance(wrapper, CPUAmpOptimWrapper) == has_bf16 and isinstance(wrapper, OptimWrapper)
    assert wrapper.clip_grad_kwargs == dict(max_norm=10, norm_type=2)


@pytest.mark.slow
def test_train_amp_on_cpu_picks_the_cpu_wrapper(tmp_path):
    proc = run_tool(sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path), '--amp',
                    '--cfg-options', 'train_cfg.max_epochs=1')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "'type': 'CPUAmpOptimWrapper'" in (tmp_path / 'toy_config.py').read_text() or \
        "type='CPUAmpOptimWrapper'" in (tmp_path / 'toy_config.py').read_text()


@pytest.mark.parametrize('script,args', [('dist_train.sh', ['cfg dir/my config.py', '2', '--work-dir', 'work dir/a']),
                                         ('dist_test.sh', ['cfg dir/my config.py', 'ck pts/epoch 1.pth', '2'])])
def test_dist_scripts_keep_paths_with_spaces(tmp_path, script, args):
    """Issue 21 defect 7: dist_train.sh / dist_test.sh broke on paths with spaces."""
    folder = tmp_path / 'a venv with spaces'
    folder.mkdir()
    fake_python = folder / 'python 3'  # records its arguments instead of starting torchrun
    fake_python.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$(dirname "$0")/argv.txt"\n')
    fake_python.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake_python), MASTER_ADDR='127.0.0.1', PORT='29555')
    proc = subprocess.run(['bash', str(REPO / 'tools' / script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    argv = (folder / 'argv.txt').read_text().splitlines()
    nproc = args[1] if script == 'dist_train.sh' else args[2]
    assert argv[:7] == ['-m', 'torch.distributed.run', '--nnodes=1', '--node_rank=0', '--master_addr=127.0.0.1',
                        f'--nproc_per_node={nproc}', '--master_port=29555']
    tool = 'train.py' if script == 'dist_train.sh' else 'test.py'
    rest = args[2:] if script == 'dist_train.sh' else [args[1], *args[3:]]
    assert argv[7:] == [str(REPO / 'tools' / tool), '--launcher', 'pytorch', args[0], *rest]
