"""Helpers for the analysis tools under tools/ that need a built Runner."""
import os.path as osp
import tempfile
from contextlib import contextmanager


@contextmanager
def scratch_runner(cfg, name: str):
    """A Runner built from ``cfg`` whose work directory is a temporary one,
    removed on exit; for tools that read a model and its data without
    training.

    Each call gets its own experiment name: mmengine keeps one visualizer per
    name, and a second Runner in the same second would otherwise reuse the
    first one's, whose directory is gone.

    Args:
        cfg (Config): the config; ``work_dir``, ``experiment_name`` and
            ``log_level`` are set here.
        name (str): the tool's name, the prefix of the experiment name.
    """
    from mmengine.runner import Runner
    cfg.log_level = 'WARNING'
    with tempfile.TemporaryDirectory() as tmp:
        cfg.work_dir = tmp
        cfg.experiment_name = f'{name}_{osp.basename(tmp)}'
        yield Runner.from_cfg(cfg)
