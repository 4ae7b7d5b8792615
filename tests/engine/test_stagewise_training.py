"""One optimiser per stage: the constructor, the train step and the loop, on a two-stage toy model."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapperDict, build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

from perception.engine import Runner, stagewise_train_step
from perception.testing.toy_task import ToyRegressor


class TwoStageToy(BaseModel):
    """Stage 'first' fits y with ``a``; stage 'second' fits the residual of ``a``'s detached prediction with
    ``b``, as TiO-Depth's later stages learn from the earlier ones' results."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 1)
        self.b = nn.Linear(4, 1)

    def stage_parameters(self):
        return dict(first=dict(all=list(self.a.parameters())), second=dict(weight=[self.b.weight], bias=[self.b.bias]))

    def active_stages(self):
        return ('first', 'second')

    def prepare_stages(self, inputs, data_samples):
        return dict(x=torch.stack(inputs), y=torch.stack(data_samples))

    def stage_loss(self, stage, state):
        if stage == 'first':
            return dict(loss_first=F.mse_loss(self.a(state['x']).squeeze(-1), state['y']))
        first = self.a(state['x']).squeeze(-1).detach()
        return dict(loss_second=F.mse_loss(first + self.b(state['x']).squeeze(-1), state['y']))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        state = self.prepare_stages(inputs, data_samples)
        return {k: v for stage in self.active_stages() for k, v in self.stage_loss(stage, state).items()}


OPTIM = dict(constructor='StagewiseOptimWrapperConstructor',
             first=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
             second=dict(optimizer=dict(type='SGD', lr=0.2)),
             paramwise_cfg=dict(second=dict(bias=0.5)))


def test_constructor_builds_one_wrapper_per_stage():
    init_default_scope('perception')
    model = TwoStageToy()
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(OPTIM))
    assert isinstance(optim_wrapper, OptimWrapperDict) and set(optim_wrapper.keys()) == {'first', 'second'}
    assert [g['lr'] for g in optim_wrapper['second'].optimizer.param_groups] == pytest.approx([0.2, 0.1])
    with pytest.raises(KeyError, match="missing \\['second'\\]"):
        build_optim_wrapper(model, {k: v for k, v in OPTIM.items() if k != 'second'})
    with pytest.raises(KeyError, match='paramwise_cfg.second: unknown groups'):
        build_optim_wrapper(model, dict(OPTIM, paramwise_cfg=dict(second=dict(decoder=0.1))))


def test_each_stage_steps_its_own_optimiser_after_the_earlier_ones():
    init_default_scope('perception')
    torch.manual_seed(0)
    model = TwoStageToy()
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(OPTIM))
    x, y = torch.randn(6, 4), torch.randn(6)
    data = dict(inputs=list(x), data_samples=list(y))
    a0, b0 = copy.deepcopy(model.a), copy.deepcopy(model.b)
    log_vars = stagewise_train_step(model, data, optim_wrapper)

    # By hand: SGD on 'first', then the forward pass of 'second' with the updated ``a``.
    loss_first = F.mse_loss(a0(x).squeeze(-1), y)
    loss_first.backward()
    a1 = copy.deepcopy(a0)
    with torch.no_grad():
        a1.weight -= 0.1 * a0.weight.grad
        a1.bias -= 0.1 * a0.bias.grad
    loss_second = F.mse_loss(a1(x).squeeze(-1).detach() + b0(x).squeeze(-1), y)
    loss_second.backward()
    torch.testing.assert_close(log_vars['loss_first'], loss_first.detach())
    torch.testing.assert_close(log_vars['loss_second'], loss_second.detach())
    torch.testing.assert_close(log_vars['loss'], (loss_first + loss_second).detach())
    torch.testing.assert_close(model.a.weight, a1.weight)
    torch.testing.assert_close(model.b.weight, b0.weight - 0.2 * b0.weight.grad)
    torch.testing.assert_close(model.b.bias, b0.bias - 0.1 * b0.bias.grad)


def _runner(tmp_path, model, optim_wrapper):
    return Runner(
        model=model, work_dir=str(tmp_path), experiment_name='stagewise',
        train_dataloader=dict(batch_size=8, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate'),
                              dataset=dict(type='ToyDataset', num_samples=32, augment=False)),
        train_cfg=dict(type='StagewiseTrainLoop', max_epochs=3), optim_wrapper=optim_wrapper,
        default_hooks=dict(checkpoint=None), default_scope='perception', randomness=dict(seed=0))


def test_loop_trains_every_stage(tmp_path):
    torch.manual_seed(0)
    model = TwoStageToy()
    a0, b0 = model.a.weight.detach().clone(), model.b.weight.detach().clone()
    runner = _runner(tmp_path, model, copy.deepcopy(OPTIM))
    runner.train()
    assert runner.iter == 12
    assert not torch.equal(model.a.weight, a0) and not torch.equal(model.b.weight, b0)
    assert set(runner.message_hub.log_scalars) >= {'train/loss_first', 'train/loss_second', 'train/loss'}


def test_loop_with_one_optimiser_is_mmengine_s(tmp_path):
    model = ToyRegressor()
    before = [p.detach().clone() for p in model.parameters()]
    runner = _runner(tmp_path, model, dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.05)))
    runner.train()
    assert runner.iter == 12
    assert all(not torch.equal(p, q) for p, q in zip(model.parameters(), before))
