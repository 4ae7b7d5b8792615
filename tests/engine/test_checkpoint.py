"""Checkpoint policy: the Runner's atomic verified saves, weights_only loading with an exact allow-list, weights
that must fit the model, resuming from the newest checkpoint that verifies."""
import logging
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.runner import load_checkpoint
from mmengine.runner import checkpoint as mm_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from perception.engine import (UnsafeCheckpointError, find_resumable_checkpoint, load_from_local,
                               register_checkpoint_loader, verify_checksum)
from perception.engine.checkpoint import file_sha256
from perception.fileio import InvalidInputError


def test_runner_checkpoint_never_truncated(tmp_path, monkeypatch):
    """A save interrupted inside mmengine's writer leaves no file under the final name."""
    from mmengine.config import Config

    from perception.engine import Runner
    cfg = Config.fromfile(os.path.join(os.path.dirname(__file__), 'toy_config.py'))
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)

    real_put = mm_checkpoint.get_file_backend

    class Exploding:

        def __init__(self, backend):
            self.backend = backend

        def put(self, data, path):
            with open(path, 'wb') as f:
                f.write(data[:len(data) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr(mm_checkpoint, 'get_file_backend',
                        lambda *a, **k: Exploding(real_put(*a, **k)))
    with pytest.raises(KeyboardInterrupt):
        runner.save_checkpoint(str(tmp_path), 'epoch_9.pth', save_optimizer=False,
                               save_param_scheduler=False)
    assert not (tmp_path / 'epoch_9.pth').exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith('.tmp')]


def test_mmengine_message_hub_types_load(tmp_path):
    from mmengine.logging import HistoryBuffer
    buf = HistoryBuffer()
    buf.update(1.5)
    ckpt = dict(state_dict={'w': torch.zeros(2)},
                message_hub=dict(log_scalars={'loss': buf},
                                 runtime_info={'x': np.float64(2.0), 'arr': np.arange(3)}),
                rng=np.random.get_state())
    path = tmp_path / 'c.pth'
    torch.save(ckpt, path)
    loaded = load_from_local(str(path))
    assert loaded['message_hub']['log_scalars']['loss'].current() == 1.5
    assert loaded['message_hub']['runtime_info']['arr'].tolist() == [0, 1, 2]


def test_getattr_is_limited_to_history_buffer_methods(tmp_path):
    """A pickled getattr(<allowed class>, <anything>) must not become a way around the list."""

    class Sneaky:

        def __reduce__(self):
            return getattr, (np.ndarray, '__class__')

    path = tmp_path / 'sneaky.pth'
    torch.save({'x': Sneaky()}, path)
    with pytest.raises(pickle.UnpicklingError, match="getattr\\(ndarray, '__class__'\\)"):
        load_from_local(str(path))


def test_pickled_callable_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'hook': os.system}, path)
    with pytest.raises(UnsafeCheckpointError, match='refused to load .*evil.pth.*system'):
        load_from_local(str(path))
    # mmengine's own loaders go through the same policy once it is registered; registering twice is harmless.
    register_checkpoint_loader()
    register_checkpoint_loader()
    model = torch.nn.Linear(2, 2)
    with pytest.raises(pickle.UnpicklingError, match='refused to load'):
        load_checkpoint(model, str(path))
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict={k: torch.full_like(v, 3.) for k, v in model.state_dict().items()}), good)
    load_checkpoint(model, str(good))
    assert torch.equal(model.weight, torch.full((2, 2), 3.))


def _toy_runner(work_dir, **overrides):
    from mmengine.config import Config

    from perception.engine import Runner
    cfg = Config.fromfile(os.path.join(os.path.dirname(__file__), 'toy_config.py'))
    cfg.work_dir = str(work_dir)
    cfg.merge_from_dict(overrides)
    return Runner.from_cfg(cfg)


def _save(runner, out_dir, name):
    runner.save_checkpoint(str(out_dir), name, save_optimizer=False, save_param_scheduler=False)
    return out_dir / name


def test_saved_checkpoints_verify_and_a_flipped_byte_is_refused(tmp_path):
    """Issue 21 defect 3: a byte-flipped checkpoint loaded silently with changed weights."""
    runner = _toy_runner(tmp_path)
    path = _save(runner, tmp_path, 'epoch_1.pth')
    sidecar = tmp_path / 'epoch_1.pth.sha256'
    assert sidecar.read_text().split() == [file_sha256(str(path)), 'epoch_1.pth']  # sha256sum -c format
    assert verify_checksum(str(path))
    good = load_from_local(str(path))['state_dict']

    data = bytearray(path.read_bytes())
    weight = good['net.0.weight'].numpy().tobytes()
    at = bytes(data).find(weight)  # inside the stored tensor: torch itself would not notice
    assert at > 0
    data[at + 5] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError, match=f'{path}: SHA-256 .* differs .*verify_checkpoint=False'):
        load_from_local(str(path))
    changed = load_from_local(str(path), verify=False)['state_dict']  # the documented switch
    assert not torch.equal(changed['net.0.weight'], good['net.0.weight'])
    register_checkpoint_loader()
    with pytest.raises(InvalidInputError, match='SHA-256'):
        load_checkpoint(torch.nn.Linear(2, 2), str(path))
    register_checkpoint_loader(verify=False)
    try:
        assert torch.equal(CheckpointLoader.load_checkpoint(str(path))['state_dict']['net.0.weight'],
                           changed['net.0.weight'])
    finally:
        register_checkpoint_loader()


@pytest.mark.parametrize('content,message', [
    (b'', 'empty file'),
    (b'epoch 3 of my run\n', 'not a readable checkpoint'),
    (None, 'not a readable checkpoint'),  # a truncated copy of a real one
])
def test_unreadable_checkpoint_names_the_file(tmp_path, content, message):
    """Issue 21 defect 3: an empty file gave a bare EOFError, a text file KeyError: 101."""
    path = tmp_path / 'model.pth'
    if content is None:
        torch.save({'state_dict': {'w': torch.arange(1000.)}}, path)
        content = path.read_bytes()[:-300]
    path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=f'{path}: {message}'):
        load_from_local(str(path))


def test_auto_resume_falls_back_to_the_newest_checkpoint_that_verifies(tmp_path, caplog):
    """Issue 21 defect 3: auto-resume on a truncated latest checkpoint stopped instead of falling back."""
    _toy_runner(tmp_path, train_cfg=dict(max_epochs=2)).train()
    latest = tmp_path / 'epoch_2.pth'
    latest.write_bytes(latest.read_bytes()[:len(latest.read_bytes()) // 2])  # a copy cut short
    path, skipped = find_resumable_checkpoint(str(tmp_path))
    assert path == str(tmp_path / 'epoch_1.pth')
    assert len(skipped) == 1 and 'epoch_2.pth' in skipped[0] and 'SHA-256' in skipped[0]

    runner = _toy_runner(tmp_path, resume=True, train_cfg=dict(max_epochs=2))
    runner.load_or_resume()
    assert runner.epoch == 1

    for name in ('epoch_1.pth', 'epoch_2.pth'):
        (tmp_path / name).write_bytes(b'')
    with pytest.raises(InvalidInputError, match='no checkpoint .* verifies'):
        _toy_runner(tmp_path, resume=True).load_or_resume()


def test_save_cleans_stale_temporaries_and_sets_the_file_mode(tmp_path):
    """Issue 21 defect 3: a killed save left its .tmp file; checkpoints were 0600 unlike other outputs."""
    runner = _toy_runner(tmp_path)
    stale = tmp_path / '.epoch_1.pth.k2x9_q0a.tmp'
    stale.write_bytes(b'half a checkpoint')
    foreign = [tmp_path / '.notes.txt.k2x9_q0a.tmp', tmp_path / 'epoch_1.pth.tmp', tmp_path / 'mine.tmp']
    for path in foreign:
        path.write_text('not ours')
    os.utime(stale, (1, 1))
    orphan = tmp_path / 'epoch_0.pth.sha256'  # of a checkpoint that max_keep_ckpts removed
    orphan.write_text('0' * 64 + '  epoch_0.pth\n')
    foreign.append(tmp_path / 'data.sha256')
    foreign[-1].write_text('not ours')
    path = _save(runner, tmp_path, 'epoch_2.pth')
    assert not stale.exists() and not orphan.exists()
    assert all(p.exists() for p in foreign)
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)
    assert ((tmp_path / 'epoch_2.pth.sha256').stat().st_mode & 0o777) == (0o666 & ~umask)


def test_test_and_inference_refuse_a_checkpoint_of_another_model(tmp_path):
    """Issue 21 defect 2: another model's checkpoint, or {'state_dict': {}}, evaluated random weights."""
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'backbone.weight': torch.zeros(3), 'net.0.weight': torch.zeros(1, 1)}}, other)
    empty = tmp_path / 'empty_state.pth'
    torch.save({'state_dict': {}}, empty)

    runner = _toy_runner(tmp_path / 'b', load_from=str(other))
    with pytest.raises(InvalidInputError, match=r'(?s)other.pth does not fit .*missing keys: .*1 unexpected keys: '
                       r'backbone.weight.*1 shape mismatches: net.0.weight.*load_strict=False'):
        runner.test()
    with pytest.raises(InvalidInputError, match=r'empty_state.pth does not fit'):
        _toy_runner(tmp_path / 'c', load_from=str(empty)).test()
    # On purpose: load what fits.
    metrics = _toy_runner(tmp_path / 'd', load_from=str(empty), load_strict=False).test()
    assert 'toy/mse' in metrics


def test_training_load_from_stays_lenient_and_logs_the_lists(tmp_path):
    partial = tmp_path / 'partial.pth'
    source = _toy_runner(tmp_path / 'src').model.state_dict()
    kept = {k: v for k, v in source.items() if k.startswith('net.0.')}
    torch.save({'state_dict': dict(kept, extra=torch.zeros(1))}, partial)
    runner = _toy_runner(tmp_path / 'ft', load_from=str(partial), train_cfg=dict(max_epochs=1))
    # What the current logger receives (its file may be another test's: runners built in the same second share
    # mmengine's logger).
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        runner.train()
    finally:
        logger.removeHandler(handler)
    log = '\n'.join(messages)
    assert 'partial.pth does not fit the model exactly; loaded what fits' in log
    assert 'unexpected keys: extra' in log and 'missing keys:' in log
