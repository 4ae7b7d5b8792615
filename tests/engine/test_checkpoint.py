"""Checkpoint policy: the Runner's atomic saves, weights_only loading with an exact allow-list."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.runner import load_checkpoint
from mmengine.runner import checkpoint as mm_checkpoint

from perception.engine import UnsafeCheckpointError, load_from_local, register_checkpoint_loader


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
