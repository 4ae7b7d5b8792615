from .checkpoint import UnsafeCheckpointError, load_from_local, register_checkpoint_loader
from .cli import build_runner, config_parser, load_config
from .ddp import DeviceAgnosticDDP, init_cpu_process_group, setup_distributed
from .optim_wrapper import CPUAmpOptimWrapper
from .runner import EpochSeedHook, Runner
from .stagewise_training import StagewiseOptimWrapperConstructor, StagewiseTrainLoop, stagewise_train_step
from .visualization_hook import Mono3DVisualizationHook

__all__ = [
    'UnsafeCheckpointError', 'load_from_local', 'register_checkpoint_loader', 'DeviceAgnosticDDP',
    'init_cpu_process_group', 'setup_distributed', 'EpochSeedHook', 'Runner', 'CPUAmpOptimWrapper',
    'build_runner', 'config_parser', 'load_config', 'Mono3DVisualizationHook', 'StagewiseOptimWrapperConstructor',
    'StagewiseTrainLoop', 'stagewise_train_step'
]
