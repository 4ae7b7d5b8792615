"""Compile every CUDA source of csrc/ with nvcc against torch's headers, without a GPU.

    python tools/check_cuda_compile.py [--nvcc nvcc] [--arch sm_80]

The CPU build of torch ships the ATen/c10 CUDA headers but not the one header its CMake
generates (``c10/cuda/impl/cuda_cmake_macros.h``); a stand-in with the same single definition is
written to a temporary include directory.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

from torch.utils.cpp_extension import include_paths

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CMAKE_MACROS = '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n'


def compile_all(nvcc: str, arch: str) -> int:
    sources = sorted(glob.glob(os.path.join(ROOT, 'csrc', '**', '*.cu'), recursive=True))
    if not sources:
        print('no CUDA sources in csrc/')
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        shim = os.path.join(tmp, 'c10', 'cuda', 'impl')
        os.makedirs(shim)
        header = os.path.join(shim, 'cuda_cmake_macros.h')
        if not any(os.path.exists(os.path.join(p, 'c10/cuda/impl/cuda_cmake_macros.h'))
                   for p in include_paths()):
            with open(header, 'w') as f:
                f.write(CMAKE_MACROS)
        includes = [os.path.join(ROOT, 'csrc'), tmp, *include_paths(),
                    sysconfig.get_paths()['include']]
        failed = 0
        for src in sources:
            obj = os.path.join(tmp, os.path.basename(src) + '.o')
            cmd = [nvcc, '-c', src, '-o', obj, '-DWITH_CUDA', '-DTORCH_EXTENSION_NAME=_ext',
                   '-std=c++20', '-O2', f'-arch={arch}', '--expt-relaxed-constexpr',
                   '-Xcudafe', '--diag_suppress=20012', *[f'-I{p}' for p in includes]]
            start = time.time()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            rel = os.path.relpath(src, ROOT)
            if proc.returncode != 0:
                failed += 1
                print(f'FAILED {rel}\n{proc.stderr[-4000:]}')
            else:
                print(f'ok {rel} ({time.time() - start:.0f} s)')
        return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--nvcc', default=shutil.which('nvcc') or 'nvcc')
    parser.add_argument('--arch', default='sm_80')
    args = parser.parse_args()
    sys.exit(compile_all(args.nvcc, args.arch))


if __name__ == '__main__':
    main()
