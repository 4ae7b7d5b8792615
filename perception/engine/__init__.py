from .checkpoint import (UnsafeCheckpointError, check_state_dict, find_resumable_checkpoint, load_from_local,
                         load_weights, register_checkpoint_loader, verify_checksum, write_checksum)
from .cli import build_runner, config_parser, load_config
from .ddp import DeviceAgnosticDDP, init_cpu_process_group, setup_distributed
from .optim_wrapper import CPUAmpOptimWrapper
from .runner import EpochSeedHook, Runner
from .stagewise_training import StagewiseOptimWrapperConstructor, StagewiseTrainLoop, stagewise_train_step
from .visualization_hook import Mono3DVisualizationHook

__all__ = [
    'UnsafeCheckpointError', 'check_state_dict', 'find_resumable_checkpoint', 'load_from_local', 'load_weights',
    'register_checkpoint_loader', 'verify_checksum', 'write_checksum', 'DeviceAgnosticDDP',
    'init_cpu_process_group', 'setup_distributed', 'EpochSeedHook', 'Runner', 'CPUAmpOptimWrapper',
    'build_runner', 'config_parser', 'load_config', 'Mono3DVisualizationHook', 'StagewiseOptimWrapperConstructor',
    'StagewiseTrainLoop', 'stagewise_train_step'
]
from .multiview_visualization_hook import MultiViewVisualizationHook  # noqa: E402

__all__ += ['MultiViewVisualizationHook']
