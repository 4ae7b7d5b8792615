import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Real samples and official evaluator outputs live beside the checkout (never copied into it).
SHARED = Path(os.environ.get('PERCEPTION_SHARED', REPO_ROOT.parent / 'shared'))


@pytest.fixture(scope='session')
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f'the shared data folder {SHARED} is missing (set PERCEPTION_SHARED)')
    return SHARED
