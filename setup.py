"""mmkd_plugins: knowledge distillation for MMDetection 3.x detectors."""
import os.path as osp

from setuptools import find_packages, setup

here = osp.dirname(osp.abspath(__file__))
with open(osp.join(here, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

setup(
    name='mmkd_plugins',
    version='0.1.0',
    description='Distil a large MMDetection detector into a small one from a config file',
    long_description=long_description,
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmkd_plugins', 'mmkd_plugins.*']),
    python_requires='>=3.8',
    # torch is deliberately a range, not a pin: install the build that fits
    # your machine (CPU or your CUDA) first; `make setup` pins the CPU one.
    install_requires=[
        'torch>=2.0',
        'mmengine>=0.10,<1.0',
        'mmcv>=2.0.0rc4,<2.2.0',  # mmdet 3.3 refuses mmcv >= 2.2
        'mmdet>=3.0,<3.4',
        'numpy',
        # The demo data are scikit-learn's bundled handwritten digits.
        'scikit-learn',
    ],
    extras_require={'tests': ['pytest', 'model-index']},
    # configs/, tools/ and model-index.yml ship inside the package, under
    # mmkd_plugins/.mim/ as MMDetection ships its own, so that a pip install
    # without the repository has them (mmkd_plugins.config_path, mim search).
    # In the repository .mim/ holds symlinks to them; the build copies the files.
    package_data={'mmkd_plugins': ['.mim/model-index.yml', '.mim/configs/**/*.py',
                                   '.mim/configs/**/*.md', '.mim/configs/**/metafile.yml',
                                   '.mim/tools/*.py']},
    entry_points={'console_scripts': [
        'mmkd-train=mmkd_plugins.cli:train',
        'mmkd-test=mmkd_plugins.cli:test',
        'mmkd-export=mmkd_plugins.cli:export',
    ]},
    zip_safe=False,
)
