"""The CUDA sources compile with nvcc against torch's headers (checked without a GPU)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which('nvcc') is None, reason='needs nvcc')
def test_cuda_sources_compile():
    proc = subprocess.run([sys.executable, 'tools/check_cuda_compile.py'], cwd=REPO,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    for source in ('csrc/msda/msda_cuda.cu', 'csrc/dfa3d/dfa3d_cuda.cu'):
        assert f'ok {source}' in proc.stdout
