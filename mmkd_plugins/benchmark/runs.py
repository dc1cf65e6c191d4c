"""Running the benchmark's jobs and keeping their results.

Every finished run is stored in ``<work_dir>/results.json`` under
``'<suite>/<row>/<seed>'`` with the options it ran with and the identity of
its inputs (the merged config, the pretrained backbones' keys, the teacher
checkpoint's hash, the data settings). A later call reuses a run whose record matches and
trains only what is missing or stale, so adding a row trains only that
row. Jobs run as separate ``tools/train.py`` processes, up to ``jobs`` at
a time, each with its share of the CPU threads; a failed job is reported
with its log's tail and does not stop the others.

A suite with a ``teacher_suite`` distils from that suite's teacher run (the
same job, key and work dir, trained if it is missing) and evaluates it once
on its own validation split (``tools/test.py``, per group with
``GroupCocoMetric`` when the suite has groups), stored as its own
``'<suite>/teacher/0'``. A ``shared`` row of such a suite is that suite's
row (the data-free suite's real-data upper bound is the glyph suite's
``inherit``): its jobs are the other suite's (key, work dir, stored runs),
so only its missing seeds train, and :meth:`Harness.with_shared_runs` shows
them under this suite's keys for its table and JSON.
"""
import fcntl
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from mmkd_plugins import experiment as ex

from .suites import Preset, Suite, preset_data_args, preset_options, schedule_options

REPO = ex.REPO


def load_results(path: str) -> Dict[str, dict]:
    """The stored runs, ``{}`` if there are none yet."""
    if osp.isfile(path):
        with open(path) as f:
            return json.load(f)
    return {}


def save_result(path: str, key: str, record: dict) -> None:
    """Add one run under a lock, re-reading the file first, so that two
    harness processes on one work dir do not lose each other's runs."""
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = load_results(path)
        merged[key] = record
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(merged, f, indent=1)
        os.replace(tmp, path)


def file_digest(path: str) -> str:
    """First 12 hex digits of a file's sha256."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()[:12]


def config_digest(config: str) -> str:
    """First 12 hex digits of the sha256 of a config's merged settings: what
    the run trains, however the file spells it. Top-level variables of the
    shared fragments (``kd_*``, ``cv_*``, ``_*``) only matter where the config
    places them, and the repository's path is left out."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config)).to_dict()
    settings = {k: v for k, v in cfg.items() if not k.startswith(('kd_', 'cv_', '_'))}
    text = json.dumps(settings, sort_keys=True, default=str).replace(REPO, '')
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Job:
    """One training run.

    Attributes:
        key (str): ``'<suite>/<row>/<seed>'``.
        config (str): config path.
        options (list[str]): ``--cfg-options``.
        inputs (dict): what the run depends on besides its options (stored
            with the result; a mismatch makes the stored run stale).
        needs (list[str]): keys of jobs that must finish first.
        prepare (callable, optional): called just before the run, returns
            extra options and inputs (e.g. the teacher checkpoint, known only
            once its job has finished).
        evaluates (str, optional): the key of a job whose last checkpoint
            this job evaluates (``tools/test.py``) instead of training.
    """
    key: str
    config: str
    options: List[str]
    inputs: dict = field(default_factory=dict)
    needs: List[str] = field(default_factory=list)
    prepare: Optional[Callable[[], tuple]] = None
    evaluates: Optional[str] = None


class Harness:
    """Data, pretraining, teacher and rows of one suite under one preset.

    Args:
        suite (Suite): what to run.
        preset (Preset): how large.
        work_dir (str): runs go to ``<work_dir>/<suite>/<row>_seed<seed>``.
        jobs (int): concurrent training processes.
        threads (int, optional): CPU threads per process; default: the
            machine's cores divided among the jobs.
        log (callable): progress messages.
    """

    def __init__(self, suite: Suite, preset: Preset, work_dir: str, jobs: int = 1,
                 threads: Optional[int] = None, log: Callable[[str], None] = print):
        if jobs < 1:
            raise ValueError(f'jobs must be >= 1, got {jobs}')
        self.suite, self.preset, self.jobs, self.log = suite, preset, jobs, log
        self.threads = threads or max(1, (os.cpu_count() or 1) // jobs)
        self.work_dir = work_dir
        self.results_path = osp.join(work_dir, 'results.json')
        if preset.name not in suite.presets:
            raise ValueError(f'suite {suite.name!r} has no configs for preset {preset.name!r}; '
                             f'its presets: {list(suite.presets)}')
        self.prefix = self._prefix(suite.name)
        #: Where the teacher run's key and work dir live: this suite's, or
        #: its ``teacher_suite``'s.
        self.teacher_prefix = self._prefix(suite.teacher_suite or suite.name)

    def _prefix(self, suite_name: str) -> str:
        return suite_name if self.preset.name == 'cpu' else f'{suite_name}-{self.preset.name}'

    def run_dir(self, key: str) -> str:
        """``<work_dir>/<prefix>/<row>_seed<seed>`` of the job ``key``."""
        prefix, row, seed = key.split('/')
        return osp.join(self.work_dir, prefix, f'{row}_seed{seed}')

    # -- inputs ------------------------------------------------------------
    def make_data(self, suite: Optional[Suite] = None) -> str:
        """Generate the data of the harness's suite (or of ``suite``) under
        the preset (a no-op when it exists with the same settings) and
        return the digest of its settings."""
        args, root = preset_data_args(suite or self.suite, self.preset)
        subprocess.check_call([sys.executable, osp.join(REPO, 'tools', 'make_demo_data.py'),
                               *args, '--quiet'], cwd=REPO)
        return file_digest(osp.join(REPO, root, 'settings.json'))

    def make_pools(self) -> Dict[str, str]:
        """Generate the suite's further data (:attr:`Suite.pools`, e.g. the
        web pool; a no-op when it exists with the same settings) and return
        ``{'pool:<folder>': digest of its settings}``, inputs of the rows."""
        digests = {}
        for args in self.suite.pools:
            subprocess.check_call([sys.executable, osp.join(REPO, 'tools', 'make_demo_data.py'),
                                   *args, '--quiet'], cwd=REPO)
            out = args[list(args).index('--out') + 1]
            digests[f'pool:{out}'] = file_digest(osp.join(REPO, out, 'settings.json'))
        return digests

    def pretrain(self) -> Dict[str, str]:
        """Pretrain the suite's backbones where needed (in parallel, one
        process each) and return ``{checkpoint: key}``."""
        from .pretrain import read_meta
        procs = []
        for config, ckpt in self.suite.pretrain.items():
            cmd = [sys.executable, osp.join(REPO, 'tools', 'pretrain_backbone.py'), config,
                   '--out', ckpt]
            env = dict(os.environ, OMP_NUM_THREADS=str(max(1, self.threads)))
            procs.append((ckpt, subprocess.Popen(cmd, cwd=REPO, env=env)))
            if len(procs) >= self.jobs:
                self._wait_pretrain(procs)
                procs = []
        self._wait_pretrain(procs)
        return {ckpt: (read_meta(osp.join(REPO, ckpt)) or {}).get('key')
                for ckpt in self.suite.pretrain.values()}

    @staticmethod
    def _wait_pretrain(procs):
        for ckpt, proc in procs:
            if proc.wait() != 0:
                raise RuntimeError(f'pretraining {ckpt} failed (exit {proc.returncode})')

    def _schedule(self, config: str, iters: Optional[int] = None) -> List[str]:
        """Schedule options: ``iters`` (default: the config's) times the
        preset's scale; none when both are the config's own."""
        if iters is None and self.preset.iters_scale == 1:
            return []
        from mmengine.config import Config
        iters = iters or Config.fromfile(osp.join(REPO, config)).train_cfg.max_iters
        return schedule_options(iters * self.preset.iters_scale)

    def teacher_job(self, base_inputs: dict) -> Job:
        """The teacher's training run; with a ``teacher_suite``, that suite's
        own job (its data, key and work dir), so that it is trained once."""
        if self.suite.teacher_suite:
            from .suites import SUITES
            base_inputs = dict(base_inputs,
                               data=self.make_data(SUITES[self.suite.teacher_suite]))
        config = self.preset.config(self.suite.teacher)
        return Job(f'{self.teacher_prefix}/teacher/0', config,
                   self._schedule(config) + ['randomness.seed=0'],
                   dict(base_inputs, config=config_digest(config)))

    def teacher_eval_job(self, teacher: Job, base_inputs: dict) -> Optional[Job]:
        """With a ``teacher_suite``: the teacher evaluated on this suite's
        validation split (per group when the suite has groups), stored as
        ``'<suite>/teacher/0'``; None otherwise (the teacher's own final
        validation is the suite's)."""
        if not self.suite.teacher_suite:
            return None
        _, root = preset_data_args(self.suite, self.preset)
        options = [f'test_dataloader.dataset.data_root={root}',
                   f'test_evaluator.ann_file={root}annotations/val.json']
        if self.suite.groups:
            options.append('test_evaluator.type=GroupCocoMetric')
        return Job(f'{self.prefix}/teacher/0', teacher.config, options,
                   dict(base_inputs, config=teacher.inputs['config']), needs=[teacher.key],
                   prepare=lambda: ([], self._checkpoint_inputs(teacher.key)),
                   evaluates=teacher.key)

    def row_jobs(self, rows: Sequence[str], seeds: Sequence[int], base_inputs: dict,
                 teacher: Job) -> List[Job]:
        """One job per (row, seed); distiller rows wait for the teacher and
        get its checkpoint and digest when they start."""
        jobs, digests = [], {}
        for seed in seeds:
            for name in rows:
                row = self.suite.rows[name]
                inputs = base_inputs
                if row.shared is not None:  # the other suite's run: its inputs, not our pools
                    inputs = {k: v for k, v in base_inputs.items() if not k.startswith('pool:')}
                config = row.config if row.distills else self.preset.config(row.config)
                opts = (self._schedule(config, row.iters)
                        + preset_options(self.suite, self.preset, row)
                        + [f'randomness.seed={seed}'] + list(row.options))
                job = Job(f'{self.row_prefix(name)}/{seed}', config, opts,
                          dict(inputs, config=digests.setdefault(config,
                                                                       config_digest(config))))
                if row.distills:
                    job.needs.append(teacher.key)
                    job.prepare = self._teacher_inputs
                jobs.append(job)
        return jobs

    def row_prefix(self, name: str) -> str:
        """``<prefix>/<row>``, the key of row ``name``'s runs without the
        seed: a ``shared`` row's runs are those of the ``teacher_suite``'s
        row (its key and work dir, under :attr:`teacher_prefix`).

        Raises:
            ValueError: if a shared row's suite has no ``teacher_suite``,
                other data than it, or that suite has pools of its own (the
                row's inputs leave every pool out), or the shared row is not the
                same run (config, options, schedule) there: its runs would
                not be the other suite's.
        """
        row = self.suite.rows[name]
        if row.shared is None:
            return f'{self.prefix}/{name}'
        from .suites import SUITES
        where = f'row {name!r} shares the runs of {row.shared!r}'
        if self.suite.teacher_suite is None:
            raise ValueError(f'{where}, but suite {self.suite.name!r} has no teacher_suite '
                             'to take them from')
        other = SUITES[self.suite.teacher_suite]
        # our own pools (the web pool) are fine: the shared row is the other
        # suite's run, which reads none, so row_jobs leaves every pool out of
        # its inputs; that holds only while the other suite has no pool
        if self.suite.data != other.data or other.pools:
            raise ValueError(f'{where} of suite {other.name!r}, whose data differ from '
                             f'suite {self.suite.name!r}\'s or which has pools of its own')
        theirs = other.rows.get(row.shared)
        if theirs is None or (theirs.config, theirs.distills, theirs.cfg_options) != (
                row.config, row.distills, row.cfg_options):
            raise ValueError(f'{where} of suite {other.name!r}, which has no such row with '
                             'the same config and options')
        return f'{self.teacher_prefix}/{row.shared}'

    def with_shared_runs(self, results: Dict[str, dict]) -> Dict[str, dict]:
        """``results`` plus every shared row's runs under this suite's own
        keys (``<prefix>/<row>/<seed>``), for its table and JSON."""
        out = dict(results)
        for name in self.suite.rows:
            key = self.row_prefix(name)
            if key != f'{self.prefix}/{name}':
                out.update({f'{self.prefix}/{name}/{k[len(key) + 1:]}': rec
                            for k, rec in results.items() if k.startswith(key + '/')})
        return out

    def teacher_checkpoint(self) -> Optional[str]:
        return ex.last_checkpoint(self.run_dir(f'{self.teacher_prefix}/teacher/0'))

    def _checkpoint_inputs(self, key: str) -> dict:
        """``{'teacher': digest}`` of the last checkpoint of job ``key``."""
        ckpt = ex.last_checkpoint(self.run_dir(key))
        if ckpt is None:
            raise FileNotFoundError(f'no checkpoint of {key} under {self.run_dir(key)}')
        return dict(teacher=file_digest(ckpt))

    def _teacher_inputs(self):
        key = f'{self.teacher_prefix}/teacher/0'
        inputs = self._checkpoint_inputs(key)
        return [f'model.teacher_ckpt={ex.last_checkpoint(self.run_dir(key))}'], inputs

    # -- running -----------------------------------------------------------
    def _stored(self, job: Job, results: dict) -> Optional[dict]:
        rec = results.get(job.key)
        if rec and rec.get('options') == job.options and rec.get('inputs') == job.inputs:
            return rec
        return None

    def _run(self, job: Job) -> dict:
        options = list(job.options)
        if job.prepare is not None:
            extra_opts, extra_inputs = job.prepare()
            options += extra_opts
            job.inputs.update(extra_inputs)
            rec = self._stored(job, load_results(self.results_path))
            if rec is not None:
                return rec
        work = self.run_dir(job.key)
        os.makedirs(osp.dirname(work), exist_ok=True)
        # One process per run dir: a second harness (another invocation on the
        # same work dir) waits here, then takes the run the first one stored,
        # instead of training into the same folder and reading its metrics.
        with open(work + '.lock', 'w') as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.log(f'[{job.key}] another process is running it in {work}; waiting')
                fcntl.flock(lock, fcntl.LOCK_EX)
                rec = self._stored(job, load_results(self.results_path))
                if rec is not None:
                    return rec
            start = time.time()
            if job.evaluates:
                ckpt = ex.last_checkpoint(self.run_dir(job.evaluates))
                self.log(f'[{job.key}] evaluating {ckpt} ({job.config})')
                metrics = ex.evaluate(job.config, ckpt, work, options, threads=self.threads)
            else:
                self.log(f'[{job.key}] training {job.config}')
                metrics = ex.train(job.config, work, options, threads=self.threads)
            record = dict(metrics, options=job.options, inputs=job.inputs, config=job.config,
                          threads=self.threads, seconds=round(time.time() - start, 1))
            if job.evaluates:
                record['evaluates'] = job.evaluates
            save_result(self.results_path, job.key, record)
        self.log(f'[{job.key}] mAP {metrics["coco/bbox_mAP"]:.4f} '
                 f'({record["seconds"]:.0f} s, {self.threads} threads)')
        return record

    def run(self, jobs: Sequence[Job]) -> Dict[str, dict]:
        """Run what is missing or stale, respecting ``needs``; returns the
        records of every job that has one. Raises at the end if any failed,
        naming each with its error (finished runs are kept)."""
        results = load_results(self.results_path)
        done: Dict[str, dict] = {}
        # a need that is not among the jobs is met by its stored run
        provided = {job.key for job in jobs}
        for job in jobs:
            done.update({n: results[n] for n in job.needs if n not in provided and n in results})
        pending = []
        for job in jobs:
            rec = self._stored(job, results) if job.prepare is None else None
            if rec is not None:
                done[job.key] = rec
            else:
                pending.append(job)
        failed: Dict[str, str] = {}
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            running = {}
            while pending or running:
                for job in list(pending):
                    if any(n in failed for n in job.needs):
                        failed[job.key] = 'skipped: ' + ', '.join(
                            n for n in job.needs if n in failed) + ' failed'
                        pending.remove(job)
                    elif all(n in done for n in job.needs) and len(running) < self.jobs:
                        running[pool.submit(self._run, job)] = job
                        pending.remove(job)
                if not running:
                    for job in pending:  # needs that nothing provides
                        failed[job.key] = f'needs {job.needs}: neither run nor stored'
                    pending = []
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = running.pop(fut)
                    try:
                        done[job.key] = fut.result()
                    except Exception as e:  # noqa: BLE001 - reported below
                        failed[job.key] = f'{type(e).__name__}: {e}'
                        self.log(f'[{job.key}] FAILED: {e}')
        if failed:
            raise RuntimeError('benchmark jobs failed:\n' + '\n'.join(
                f'  {k}: {v}' for k, v in failed.items()))
        return done
