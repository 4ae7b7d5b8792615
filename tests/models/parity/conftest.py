"""Fixtures of the parity tests with the official MonoDETR and MonoDGP (issue 22): the fixture weights
written as official checkpoints, converted by ``tools/model_converters/<model>_official.py`` and loaded into
the official-behaviour configs."""
import importlib.util
import sys
from pathlib import Path

import pytest

from perception.apis import init_model
from perception.testing.parity import official_state_dict_file

REPO = Path(__file__).resolve().parents[3]
CONFIGS = dict(monodetr=REPO / 'configs/monodetr/monodetr_r50_official_kitti.py',
               monodgp=REPO / 'configs/monodgp/monodgp_r50_official_kitti.py')
CONVERTERS = REPO / 'tools/model_converters'


def load_converter(model: str):
    """The module ``tools/model_converters/<model>_official.py`` (which imports its sibling by name)."""
    if str(CONVERTERS) not in sys.path:
        sys.path.insert(0, str(CONVERTERS))
    spec = importlib.util.spec_from_file_location(f'{model}_official', CONVERTERS / f'{model}_official.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def official_configs():
    """{model: path of its official-behaviour config}."""
    return CONFIGS


@pytest.fixture(scope='session')
def parity_converter():
    """``parity_converter(model)``: the module ``tools/model_converters/<model>_official.py``."""
    return load_converter


@pytest.fixture(scope='session')
def fixture_dir(shared_dir):
    """``fixture_dir(model)``: the public parity fixture of ``model``."""
    return lambda model: shared_dir / 'oracles/parity/public' / model


@pytest.fixture(scope='session')
def official_checkpoints(tmp_path_factory, shared_dir):
    """Per model (created on first use): the fixture weights (SEED 0) saved as an official checkpoint and
    converted with the converter's ``convert``, the paths ``(official, converted)``."""
    cache = {}

    def get(model: str):
        if model not in cache:
            folder = tmp_path_factory.mktemp(model)
            official, converted = folder / 'official.pth', folder / 'converted.pth'
            official_state_dict_file(shared_dir / f'oracles/parity/shapes/{model}_shapes.json', 0, official)
            getattr(load_converter(model), f'convert_{model}')(str(official), str(converted), str(CONFIGS[model]))
            cache[model] = official, converted
        return cache[model]

    return get


@pytest.fixture(scope='session')
def official_models(official_checkpoints):
    """Per model: the official-behaviour config's model with the converted checkpoint, in eval mode, keeping
    the detections of every score (the fixtures' threshold 0)."""
    cache = {}

    def get(model: str):
        if model not in cache:
            cache[model] = init_model(str(CONFIGS[model]), str(official_checkpoints(model)[1]),
                                      cfg_options={'model.test_cfg.score_thr': 0.})
        return cache[model]

    return get
