"""What the scripts in ``tools/`` share, kept in the package so that it is
importable and tested:

* running training and test jobs and reading their metrics (the engine of
  ``make demo`` and of the accuracy benchmark). Each job runs
  ``tools/train.py`` in a fresh process, as a user would, and its final
  validation metrics are read from mmengine's
  ``<work_dir>/<timestamp>/vis_data/scalars.json``;
* a Runner in a temporary work dir, for the analysis tools
  (:func:`scratch_runner`);
* MMDetection's own scripts inside the installed package
  (:func:`mmdet_tool_path`, :func:`run_mmdet_tool`).
"""
import glob
import json
import os
import os.path as osp
import runpy
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def final_metrics(work_dir: str) -> Dict[str, float]:
    """The last validation metrics logged under ``work_dir`` (newest run):
    the ``coco/`` keys, and the ``group/`` keys of ``GroupCocoMetric``."""
    runs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not runs:
        raise FileNotFoundError(f'no scalars.json under {work_dir}: did training run?')
    metrics: Dict[str, float] = {}
    with open(runs[-1]) as f:
        for line in f:
            record = json.loads(line)
            if any(k.startswith('coco/') for k in record):
                metrics = {k: v for k, v in record.items()
                           if k.startswith(('coco/', 'group/'))}
    if not metrics:
        raise ValueError(f'{runs[-1]} holds no validation metrics')
    return metrics


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint named in ``work_dir/last_checkpoint``, if it exists."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        path = f.read().strip()
    return path if osp.isfile(path) else None


def _run_tool(script: str, args: Sequence[str], work_dir: str, log_name: str,
              threads: Optional[int] = None) -> None:
    """Run ``script`` (a name in ``tools/`` or a path) in a child process, its
    output to ``work_dir/log_name``, with ``threads`` CPU threads if given;
    on failure the log's tail is raised in the error, so that nothing is
    lost."""
    os.makedirs(work_dir, exist_ok=True)
    tool = script if osp.isabs(script) else osp.join(REPO, 'tools', script)
    cmd = [sys.executable, tool, *args]
    log_path = osp.join(work_dir, log_name)
    env = None
    if threads is not None:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with open(log_path, 'w') as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    if code != 0:
        with open(log_path) as f:
            tail = ''.join(f.readlines()[-30:])
        raise RuntimeError(f'{tool} failed ({" ".join(cmd)}), log {log_path}:\n{tail}')


def train(config: str, work_dir: str, cfg_options: Sequence[str] = (),
          extra_args: Sequence[str] = (), log_name: str = 'train.log',
          threads: Optional[int] = None) -> Dict[str, float]:
    """Train ``config`` into ``work_dir`` and return its final metrics.

    The child's output goes to ``work_dir/<log_name>``; on failure its tail is
    raised in the error so that nothing is lost. ``threads`` sets the
    child's CPU threads (``OMP_NUM_THREADS``).
    """
    args = [config, '--work-dir', work_dir, *extra_args]
    if cfg_options:
        args += ['--cfg-options', *cfg_options]
    start = time.time()
    _run_tool('train.py', args, work_dir, log_name, threads)
    metrics = final_metrics(work_dir)
    metrics['train_seconds'] = round(time.time() - start, 1)
    return metrics


def evaluate(config: str, checkpoint: str, work_dir: str, cfg_options: Sequence[str] = (),
             log_name: str = 'test.log', script: str = 'test.py',
             threads: Optional[int] = None) -> Dict[str, float]:
    """Evaluate ``checkpoint`` with ``script`` (our ``tools/test.py`` by
    default, or a path such as MMDetection's own, which knows nothing of
    mmkd_plugins) and return the metrics (``coco/`` and ``group/`` keys) it
    wrote to ``<work_dir>/<timestamp>/<timestamp>.json``. ``threads`` sets
    the child's CPU threads."""
    args = [config, checkpoint, '--work-dir', work_dir]
    if cfg_options:
        args += ['--cfg-options', *cfg_options]
    _run_tool(script, args, work_dir, log_name, threads)
    runs = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    if not runs:
        raise FileNotFoundError(f'no metrics json under {work_dir}: did testing run?')
    with open(runs[-1]) as f:
        record = json.load(f)
    return {k: v for k, v in record.items() if k.startswith(('coco/', 'group/'))}


def gap_closed(student: float, distilled: float, teacher: float) -> Optional[float]:
    """Fraction of the teacher-student gap closed by distillation (None when
    the teacher is not better than the student)."""
    gap = teacher - student
    return None if gap <= 0 else (distilled - student) / gap


def format_table(rows: List[Dict], columns: Sequence[str]) -> str:
    """A Markdown table of ``rows`` (dicts) with ``columns``."""
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    for row in rows:
        lines.append('| ' + ' | '.join(str(row.get(c, '')) for c in columns) + ' |')
    return '\n'.join(lines)


def schedule_options(iters: int, warmup: int = 100) -> List[str]:
    """``--cfg-options`` that set the demo configs' schedule to ``iters``
    iterations (loop, cosine decay, checkpoint and validation at the end)."""
    if iters <= warmup:
        raise ValueError(f'iters must exceed the {warmup}-iteration warm-up, got {iters}')
    return [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'param_scheduler.1.end={iters}', f'param_scheduler.1.T_max={iters - warmup}',
            f'default_hooks.checkpoint.interval={iters}']


def count_parameters(config: str) -> int:
    """Parameters of the model a config builds (the student of a distiller)."""
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from .distillers import is_distiller_type
    from .distillers.detection_distiller import build_detector_cfg
    model_cfg = Config.fromfile(config).model
    if is_distiller_type(model_cfg.get('type')):
        model_cfg = build_detector_cfg(model_cfg.student, 'model.student')
    return sum(p.numel() for p in MODELS.build(model_cfg).parameters())

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


def mmdet_tool_path(name: str) -> str:
    """Path of one of MMDetection's own scripts shipped inside the package
    (``mmdet/.mim/tools/<name>``), e.g. ``'train.py'``."""
    import mmdet
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', name)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'MMDetection script {path} not found: mmdet was installed without '
            'its tools (an editable source install keeps them in <repo>/tools)')
    return path


def run_mmdet_tool(name: str, argv=None) -> None:
    """Run MMDetection's ``tools/<name>`` as ``__main__`` with ``argv``, after
    importing mmkd_plugins so that its registries are filled even for a
    config without ``custom_imports``."""
    import mmkd_plugins  # noqa: F401
    path = mmdet_tool_path(name)
    sys.argv = [path] + list(sys.argv[1:] if argv is None else argv)
    runpy.run_path(path, run_name='__main__')
