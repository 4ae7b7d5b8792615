"""The Runner of perception: mmengine's, with atomic checkpoints, weights-only loading and exact resumption."""
import os.path as osp

from mmengine.hooks import Hook
from mmengine.runner import Runner as MMEngineRunner
from mmengine.runner.utils import set_random_seed

from perception.fileio import atomic_write
from perception.registry import HOOKS, RUNNERS
from .checkpoint import register_checkpoint_loader


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Re-seeds Python, numpy and torch at the start of every epoch from (seed, epoch).

    What an epoch draws (augmentations, dropout, the DataLoader's base seed) then depends on the
    seed and the epoch alone, not on what ran before it: a run resumed from an epoch checkpoint
    is bit-identical to an uninterrupted one. Restoring RNG states saved in the checkpoint is not
    enough, because the validation after a save still consumes random numbers in the
    uninterrupted run.
    """

    priority = 'VERY_HIGH'

    def before_train_epoch(self, runner) -> None:
        if runner.seed is None:
            return
        cfg = runner._randomness_cfg
        set_random_seed(
            seed=(runner.seed + runner.epoch) % 2**31,
            deterministic=False,  # applied once by the Runner; nothing to switch per epoch
            diff_rank_seed=cfg.get('diff_rank_seed', False))


@RUNNERS.register_module()
class Runner(MMEngineRunner):
    """mmengine's Runner whose checkpoints are written atomically (temporary file, fsync, rename), load
    with ``weights_only=True`` (:func:`~perception.engine.checkpoint.register_checkpoint_loader`) and whose
    epochs are seeded by :class:`EpochSeedHook`, so that resuming is exact."""

    def __init__(self, *args, **kwargs):
        register_checkpoint_loader()
        super().__init__(*args, **kwargs)
        if not any(isinstance(h, EpochSeedHook) for h in self._hooks):
            self.register_hook(EpochSeedHook())

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        target = osp.join(out_dir, filename)
        if '://' in out_dir:  # remote storage: leave atomicity to the backend
            return super().save_checkpoint(out_dir, filename, *args, **kwargs)

        def write(tmp_path: str) -> None:
            super(Runner, self).save_checkpoint(
                osp.dirname(tmp_path), osp.basename(tmp_path), *args, **kwargs)

        atomic_write(target, write)
