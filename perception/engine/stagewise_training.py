"""One optimiser per training stage of a model (TiO-Depth's mono, stereo and refine stages), updated in turn.

mmengine builds one optimiser wrapper and lets ``model.train_step`` do one update; a model trained in
stages with their own optimisers needs an ``OptimWrapperDict`` (:class:`StagewiseOptimWrapperConstructor`)
and an iteration that runs the stages one after another, each stepping its own optimiser before the next
stage's forward pass (:func:`stagewise_train_step`, run by :class:`StagewiseTrainLoop`).

The model provides:

- ``stage_parameters() -> {stage: {group: [parameters]}}``: what each stage's optimiser trains, by group;
- ``active_stages() -> tuple``: the stages whose losses are on now, in update order;
- ``prepare_stages(inputs, data_samples) -> dict``: the state the stages of one step share;
- ``stage_loss(stage, state) -> dict``: one stage's losses; a stage may leave detached results in ``state``
  for the later ones;
- ``data_preprocessor`` and ``parse_losses``, as every mmengine ``BaseModel``.
"""
import copy
from typing import Dict, Optional, Sequence, Union

from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.runner import EpochBasedTrainLoop
from torch import Tensor, nn

from perception.registry import LOOPS, OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS


def stagewise_train_step(model: nn.Module, data: Union[dict, tuple, list],
                         optim_wrapper: OptimWrapperDict) -> Dict[str, Tensor]:
    """One training iteration: each active stage runs its forward pass and steps its own optimiser wrapper
    (``optim_wrapper[stage]``); later stages see the earlier ones' results detached, and their forward pass
    runs with the parameters the earlier stages just updated.

    Returns:
        The log variables of every active stage, and ``loss``, the sum of the stages' total losses.
    """
    data = model.data_preprocessor(data, True)
    state = model.prepare_stages(data['inputs'], data['data_samples'])
    log_vars = {}
    total = 0.
    for stage in model.active_stages():
        wrapper = optim_wrapper[stage]
        with wrapper.optim_context(model):
            losses = model.stage_loss(stage, state)
        loss, stage_vars = model.parse_losses(losses)
        wrapper.update_params(loss)
        total = total + stage_vars.pop('loss')
        log_vars.update(stage_vars)
    log_vars['loss'] = total
    return log_vars


@LOOPS.register_module()
class StagewiseTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop`` whose iterations run :func:`stagewise_train_step` when the runner's
    optimiser wrapper is an ``OptimWrapperDict`` (one wrapper per stage); with a single optimiser wrapper
    it is mmengine's loop (``model.train_step``, the stages' losses summed).

    The stages' forward passes call the model's methods directly, not a distributed wrapper's ``forward``,
    so gradients would not be synchronised: a wrapped (DDP) model is refused.
    """

    def run_iter(self, idx: int, data_batch: Sequence[dict]) -> None:
        optim_wrapper = self.runner.optim_wrapper
        if not isinstance(optim_wrapper, OptimWrapperDict):
            return super().run_iter(idx, data_batch)
        if is_model_wrapper(self.runner.model):
            raise NotImplementedError(
                f'{type(self).__name__} with one optimiser per stage runs in one process only; got a '
                f'{type(self.runner.model).__name__}')
        self.runner.call_hook('before_train_iter', batch_idx=idx, data_batch=data_batch)
        outputs = stagewise_train_step(self.runner.model, data_batch, optim_wrapper)
        self.runner.call_hook('after_train_iter', batch_idx=idx, data_batch=data_batch, outputs=outputs)
        self._iter += 1


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class StagewiseOptimWrapperConstructor:
    """One optimiser wrapper per stage of the model, over its ``stage_parameters()``.

    ``optim_wrapper`` config (TiO-Depth's; its official learning rates put the decoder at 0.1 in stereo and
    refine)::

        optim_wrapper = dict(
            constructor='StagewiseOptimWrapperConstructor',
            mono=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.999))),
            stereo=dict(...), refine=dict(...),
            # learning-rate multipliers per stage and group; groups without one keep the stage's lr
            paramwise_cfg=dict(stereo=dict(decoder=0.1), refine=dict(decoder=0.1)))

    The param schedulers are then a dict with the same keys, and ``train_cfg`` a :class:`StagewiseTrainLoop`.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        self.optim_wrapper_cfg = copy.deepcopy(dict(optim_wrapper_cfg))
        self.lr_mults = copy.deepcopy(dict(paramwise_cfg or {}))

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = model.module if is_model_wrapper(model) else model
        stage_params = model.stage_parameters()
        missing = [s for s in stage_params if s not in self.optim_wrapper_cfg]
        if missing:
            raise KeyError(f'optim_wrapper needs one wrapper per stage {tuple(stage_params)}, missing {missing}')
        wrappers = {}
        for stage, groups in stage_params.items():
            cfg = copy.deepcopy(dict(self.optim_wrapper_cfg[stage]))
            optimizer_cfg = dict(cfg.pop('optimizer'))
            lr = optimizer_cfg['lr']
            mults = self.lr_mults.get(stage, {})
            unknown = set(mults) - set(groups)
            if unknown:
                raise KeyError(f'paramwise_cfg.{stage}: unknown groups {sorted(unknown)}, expected {sorted(groups)}')
            param_groups = [dict(params=params, lr=lr * mults.get(name, 1.)) for name, params in groups.items()]
            optimizer = OPTIMIZERS.build(dict(optimizer_cfg, params=param_groups))
            cfg.setdefault('type', 'OptimWrapper')
            wrappers[stage] = OPTIM_WRAPPERS.build(dict(cfg, optimizer=optimizer))
        return OptimWrapperDict(**wrappers)
