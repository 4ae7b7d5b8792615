"""Build perception and its C++/CUDA extension ``perception._ext``.

The C++ sources in ``csrc/`` are always compiled. CUDA sources are added when torch was built with CUDA
and a CUDA toolkit is found, or when ``FORCE_CUDA=1``. No ``-std`` flag is set here: torch's
``cpp_extension`` picks the standard its headers need (C++17 for 2.13, C++20 for 2.14).
"""
import glob
import os

from setuptools import find_packages, setup


def get_version():
    scope = {}
    with open(os.path.join('perception', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def get_extensions():
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, CppExtension, CUDAExtension

    sources = sorted(glob.glob('csrc/**/*.cpp', recursive=True))
    cuda_sources = sorted(glob.glob('csrc/**/*.cu', recursive=True))
    # -fopenmp: at::parallel_for is an inline `#pragma omp parallel` under torch's OpenMP backend; without the flag
    # the CPU kernels run on one thread. The extension then shares the libgomp.so.1 torch has loaded.
    extra_compile_args = {'cxx': ['-O3', '-fopenmp']}
    define_macros = []
    use_cuda = os.getenv('FORCE_CUDA', '') == '1' or (
        torch.version.cuda is not None and CUDA_HOME is not None)
    if use_cuda:
        extension = CUDAExtension
        sources += cuda_sources
        define_macros.append(('WITH_CUDA', None))
        extra_compile_args['nvcc'] = ['-O3', '--use_fast_math']
    else:
        extension = CppExtension
    return [
        extension(
            name='perception._ext',
            sources=sources,
            include_dirs=[os.path.abspath('csrc')],
            define_macros=define_macros,
            extra_compile_args=extra_compile_args,
            extra_link_args=['-fopenmp'])
    ]


def get_cmdclass():
    from torch.utils.cpp_extension import BuildExtension
    return {'build_ext': BuildExtension.with_options(use_ninja=True)}


setup(
    name='perception',
    version=get_version(),
    description='3D perception and depth toolbox in the OpenMMLab style',
    # perception alone: tests/ and its KITTI samples in tests/data (non-commercial licences) stay out of the wheel
    packages=find_packages(include=['perception', 'perception.*']),
    python_requires='>=3.10',
    ext_modules=get_extensions(),
    cmdclass=get_cmdclass(),
    zip_safe=False,
)
