"""A tiny regression task that exercises the real Runner: model, dataset, metric and an interrupting hook.

Importing this module registers them in perception's registries (``tests/engine/toy_config.py`` names it in
``custom_imports``); ``perception.testing`` itself does not import it.
"""
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch import nn
from torch.utils.data import Dataset

from perception.registry import DATASETS, HOOKS, METRICS, MODELS


@MODELS.register_module()
class ToyRegressor(BaseModel):

    def __init__(self, in_dim: int = 4, hidden: int = 16, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, 1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        pred = self.net(torch.stack(inputs)).squeeze(-1)
        if mode == 'loss':
            return dict(loss=F.mse_loss(pred, torch.stack(data_samples)))
        if mode == 'predict':
            return [dict(pred=p, target=t) for p, t in zip(pred, data_samples)]
        return pred


@DATASETS.register_module()
class ToyDataset(Dataset):
    """y = w.x + noise; the inputs get fresh numpy noise at every access (an augmentation), so a
    resumed run only matches an uninterrupted one if the RNG state is restored."""

    metainfo = dict(classes=('value', ))

    def __init__(self, num_samples: int = 32, in_dim: int = 4, seed: int = 0,
                 augment: bool = True):
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(num_samples, in_dim, generator=gen)
        self.y = self.x @ torch.linspace(-1, 1, in_dim) + 0.5
        self.augment = augment

    def __len__(self):
        return len(self.x)

    def __getitem__(self, idx):
        x = self.x[idx]
        if self.augment:
            x = x + torch.from_numpy(np.random.normal(0, 0.01, x.shape).astype(np.float32))
        return dict(inputs=x, data_samples=self.y[idx])


@METRICS.register_module()
class ToyMSEMetric(BaseMetric):
    default_prefix = 'toy'

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            self.results.append(float((sample['pred'] - sample['target'])**2))

    def compute_metrics(self, results):
        return dict(mse=float(np.mean(results)))


@HOOKS.register_module()
class InterruptAfterEpoch(Hook):
    """Kills the run right after the checkpoint of ``epoch`` was written (as a signal would)."""

    priority = 'LOWEST'  # after the CheckpointHook

    def __init__(self, epoch: int):
        self.epoch = epoch

    def after_train_epoch(self, runner):
        if runner.epoch + 1 == self.epoch:
            raise KeyboardInterrupt(f'interrupted after epoch {self.epoch}')
