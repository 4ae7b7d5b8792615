"""The Runner of perception: mmengine's, with atomic verified checkpoints, weights-only loading that must fit
the model, and exact resumption."""
import os
import os.path as osp
import time

from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner as MMEngineRunner
from mmengine.runner.checkpoint import _load_checkpoint
from mmengine.runner.utils import set_random_seed

from perception.fileio import InvalidInputError, atomic_write
from perception.fileio.atomic import remove_stale_temporaries
from perception.ops import use_philox_dropout
from perception.registry import HOOKS, RUNNERS
from .checkpoint import (CHECKSUM_SUFFIX, find_resumable_checkpoint, load_weights, register_checkpoint_loader,
                         write_checksum)


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
    """mmengine's Runner whose checkpoints are written atomically (temporary file, fsync, rename) with a
    ``.sha256`` beside them, load with ``weights_only=True`` after verification
    (:func:`~perception.engine.checkpoint.register_checkpoint_loader`) and whose epochs are seeded by
    :class:`EpochSeedHook`, so that resuming is exact.

    Config keys it reads besides mmengine's:

    - ``load_strict`` (default True): ``load_from`` for testing or validation must fit the model exactly (every
      key present, none extra, same shapes), else an error lists the differences; False loads what fits, on
      purpose. Training's ``load_from`` (fine-tuning) always loads what fits and logs the lists.
    - ``verify_checkpoint`` (default True): check each checkpoint against its ``.sha256``; False skips it.

    Every ``nn.Dropout`` of the model becomes :class:`~perception.ops.PhiloxDropout` (same probability and
    distribution; on the CPU its mask is drawn in parallel instead of by torch's sequential generator).

    ``resume=True`` without ``load_from`` (``tools/train.py --resume``) resumes from the newest checkpoint of
    the work dir that verifies, and logs the newer ones it skipped and why.
    """

    def __init__(self, *args, **kwargs):
        cfg = kwargs.get('cfg') or {}
        self._load_strict = bool(cfg.get('load_strict', True))
        self._verify_checkpoint = bool(cfg.get('verify_checkpoint', True))
        register_checkpoint_loader(verify=self._verify_checkpoint)
        super().__init__(*args, **kwargs)
        use_philox_dropout(self.model)
        if not any(isinstance(h, EpochSeedHook) for h in self._hooks):
            self.register_hook(EpochSeedHook())

    def train(self):
        self._load_strict = False  # load_from in training is fine-tuning: the lists are logged instead
        return super().train()

    def load_or_resume(self) -> None:
        if not self._has_loaded and self._resume and self._load_from is None:
            path, skipped = find_resumable_checkpoint(self.work_dir, verify=self._verify_checkpoint)
            for reason in skipped:
                self.logger.warning(f'--resume skips a checkpoint that does not verify: {reason}')
            if path is None and skipped:
                raise InvalidInputError(f'--resume: no checkpoint of {self.work_dir} verifies (see above); '
                                        'resume from a path, or start a new work dir')
            if path is not None:
                self.logger.info(f'Resuming from {path}, the newest checkpoint of {self.work_dir} that verifies')
                self._load_from = path
        super().load_or_resume()

    def load_checkpoint(self, filename: str, map_location='cpu', strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]):
        """mmengine's, checking first that the weights fit the model: with ``load_strict`` (outside training)
        a mismatch is an error, otherwise it is logged in full. ``strict`` keeps mmengine's meaning."""
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        checkpoint = load_weights(model, checkpoint, filename, strict or self._load_strict, revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    @master_only
    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        target = osp.join(out_dir, filename)
        if '://' in out_dir:  # remote storage: leave atomicity to the backend
            return super().save_checkpoint(out_dir, filename, *args, **kwargs)
        start = time.time()

        def write(tmp_path: str) -> None:
            super(Runner, self).save_checkpoint(
                osp.dirname(tmp_path), osp.basename(tmp_path), *args, **kwargs)

        atomic_write(target, write)
        write_checksum(target)
        for path in remove_stale_temporaries(out_dir, r'.+\.pth(\.sha256)?', older_than=start):
            self.logger.info(f'removed {path}, left by an interrupted save')
        # CheckpointHook's max_keep_ckpts removes old checkpoints but not their .sha256.
        for name in os.listdir(out_dir):
            checkpoint = osp.join(out_dir, name[:-len(CHECKSUM_SUFFIX)])
            if name.endswith('.pth' + CHECKSUM_SUFFIX) and not osp.exists(checkpoint):
                os.remove(checkpoint + CHECKSUM_SUFFIX)
