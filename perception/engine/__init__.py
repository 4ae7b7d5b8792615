from .checkpoint import UnsafeCheckpointError, atomic_write, load_from_local
from .cli import build_runner, config_parser, load_config
from .ddp import DeviceAgnosticDDP, init_cpu_process_group, setup_distributed
from .optim_wrapper import CPUAmpOptimWrapper
from .runner import EpochSeedHook, Runner
from .visualization_hook import Mono3DVisualizationHook

__all__ = [
    'UnsafeCheckpointError', 'atomic_write', 'load_from_local', 'DeviceAgnosticDDP',
    'init_cpu_process_group', 'setup_distributed', 'EpochSeedHook', 'Runner', 'CPUAmpOptimWrapper',
    'build_runner', 'config_parser', 'load_config', 'Mono3DVisualizationHook'
]
