# Builds cyhot.pyx in place (python setup.py build_ext --inplace), with debug information so that
# native frames have C lines to map to .pyx ones.
from setuptools import Extension, setup

from Cython.Build import cythonize

setup(ext_modules=cythonize([Extension("cyhot", ["cyhot.pyx"], extra_compile_args=["-g", "-O2"])]))
