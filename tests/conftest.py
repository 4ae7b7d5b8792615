import os
from pathlib import Path

import pytest
from mmengine.registry import DefaultScope

# The real samples and oracle files the tests read (tests/data/README.md); PERCEPTION_SHARED names another
# folder of the same layout to read instead, such as the full ../shared.
SHARED = Path(os.environ.get('PERCEPTION_SHARED', Path(__file__).resolve().parent / 'data'))


@pytest.fixture(scope='session')
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f'the test data folder {SHARED} is missing (PERCEPTION_SHARED names it)')
    return SHARED


@pytest.fixture(scope='session', autouse=True)
def default_scope():
    """The registry scope of perception's configs, for every fixture and test (set here, not at import)."""
    with DefaultScope.overwrite_default_scope('perception'):
        yield
