"""Registries of perception, children of mmdet3d's.

A config with ``default_scope='perception'`` finds perception's modules by bare name and mmdet3d's or
mmdet's with their scope prefix (``type='mmdet3d.Det3DDataPreprocessor'``, ``type='mmdet.ResNet'``), as
mmdet3d's own configs do for mmdet. (A bare name reaches a parent registry's module only once that
module was imported, so the prefix is the reliable spelling.)
"""
from mmdet3d.registry import DATA_SAMPLERS as MMDET3D_DATA_SAMPLERS
from mmdet3d.registry import DATASETS as MMDET3D_DATASETS
from mmdet3d.registry import EVALUATOR as MMDET3D_EVALUATOR
from mmdet3d.registry import HOOKS as MMDET3D_HOOKS
from mmdet3d.registry import LOOPS as MMDET3D_LOOPS
from mmdet3d.registry import METRICS as MMDET3D_METRICS
from mmdet3d.registry import MODEL_WRAPPERS as MMDET3D_MODEL_WRAPPERS
from mmdet3d.registry import MODELS as MMDET3D_MODELS
from mmdet3d.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMDET3D_OPTIM_WRAPPER_CONSTRUCTORS
from mmdet3d.registry import OPTIM_WRAPPERS as MMDET3D_OPTIM_WRAPPERS
from mmdet3d.registry import OPTIMIZERS as MMDET3D_OPTIMIZERS
from mmdet3d.registry import PARAM_SCHEDULERS as MMDET3D_PARAM_SCHEDULERS
from mmdet3d.registry import RUNNERS as MMDET3D_RUNNERS
from mmdet3d.registry import TASK_UTILS as MMDET3D_TASK_UTILS
from mmdet3d.registry import TRANSFORMS as MMDET3D_TRANSFORMS
from mmdet3d.registry import VISBACKENDS as MMDET3D_VISBACKENDS
from mmdet3d.registry import VISUALIZERS as MMDET3D_VISUALIZERS
from mmengine.registry import Registry

RUNNERS = Registry('runner', parent=MMDET3D_RUNNERS, locations=['perception.engine'])
LOOPS = Registry('loop', parent=MMDET3D_LOOPS, locations=['perception.engine'])
HOOKS = Registry('hook', parent=MMDET3D_HOOKS, locations=['perception.engine'])
DATASETS = Registry('dataset', parent=MMDET3D_DATASETS, locations=['perception.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMDET3D_DATA_SAMPLERS, locations=['perception.datasets'])
TRANSFORMS = Registry(
    'transform', parent=MMDET3D_TRANSFORMS, locations=['perception.datasets.transforms'])
MODELS = Registry('model', parent=MMDET3D_MODELS, locations=['perception.models', 'perception.ops'])
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMDET3D_MODEL_WRAPPERS, locations=['perception.engine'])
OPTIMIZERS = Registry('optimizer', parent=MMDET3D_OPTIMIZERS, locations=['perception.engine'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMDET3D_OPTIM_WRAPPERS, locations=['perception.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMDET3D_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['perception.engine'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMDET3D_PARAM_SCHEDULERS, locations=['perception.engine'])
# the nuScenes metric is a location of its own: it imports mmdet3d's metrics and the devkit (seconds), which the
# KITTI and depth tools that import perception.evaluation do not need
METRICS = Registry('metric', parent=MMDET3D_METRICS,
                   locations=['perception.evaluation', 'perception.evaluation.metrics.nuscenes_metric'])
EVALUATOR = Registry('evaluator', parent=MMDET3D_EVALUATOR, locations=['perception.evaluation'])
TASK_UTILS = Registry(
    'task util', parent=MMDET3D_TASK_UTILS, locations=['perception.models'])
VISUALIZERS = Registry(
    'visualizer', parent=MMDET3D_VISUALIZERS, locations=['perception.visualization'])
VISBACKENDS = Registry(
    'vis_backend', parent=MMDET3D_VISBACKENDS, locations=['perception.visualization'])

# Per-sample random augmentations of a batch of tensors (AugUndo's geometric and photometric transforms). Not
# pipeline TRANSFORMS, which act on one sample's dict before collation and whose names (Rotate) they would
# shadow; a root registry, since no OpenMMLab package has this kind.
BATCH_AUGMENTS = Registry('batch augment', locations=['perception.models.depth'])
