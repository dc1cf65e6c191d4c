"""The harness's scheduling and result cache, with training replaced by a fake."""
import json
import os
import os.path as osp
import threading

import pytest

from mmkd_plugins.benchmark import runs
from mmkd_plugins.benchmark.suites import PRESETS, Row, Suite


def _suite():
    rows = {'student': Row('s.py', twin=None, distills=False),
            'inherit': Row('i.py', twin='student'),
            'fgd': Row('f.py', twin='inherit', options=('x=1',))}
    return Suite(name='toy', data=(), data_root='d/', rows=rows, default_rows=tuple(rows),
                 teacher='t.py', pretrain={})


class FakeTrain:
    """Stands in for experiment.train: records calls, writes a checkpoint
    (so that the teacher's is found), fails on request."""

    def __init__(self, fail=()):
        self.calls, self.fail, self.lock = [], set(fail), threading.Lock()
        self.active = self.max_active = 0

    def __call__(self, config, work_dir, options, threads=None):
        with self.lock:
            self.calls.append((config, work_dir, list(options)))
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if config in self.fail:
                raise RuntimeError(f'{config} diverged')
            os.makedirs(work_dir, exist_ok=True)
            ckpt = osp.join(work_dir, 'iter_10.pth')
            with open(ckpt, 'w') as f:
                f.write(config + ' '.join(options))
            with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
                f.write(ckpt)
            return {'coco/bbox_mAP': 0.1 * len(self.calls)}
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture
def harness(tmp_path, monkeypatch):
    fake = FakeTrain()
    monkeypatch.setattr(runs.ex, 'train', fake)
    monkeypatch.setattr(runs.Harness, '_schedule', lambda self, config: [])
    monkeypatch.setattr(runs, 'config_digest', lambda config: 'digest of ' + config)
    h = runs.Harness(_suite(), PRESETS['cpu'], str(tmp_path), jobs=2, threads=1,
                     log=lambda m: None)
    return h, fake


def _jobs(h, rows=('student', 'inherit', 'fgd'), seeds=(0, 1), inputs=None):
    inputs = inputs or dict(data='d1')
    teacher = h.teacher_job(inputs)
    return [teacher] + h.row_jobs(list(rows), list(seeds), inputs, teacher)


def test_runs_everything_once_then_reuses(harness):
    h, fake = harness
    done = h.run(_jobs(h))
    assert len(fake.calls) == 1 + 3 * 2 and len(done) == 7
    teacher_calls = [c for c in fake.calls if c[0] == 't.py']
    assert len(teacher_calls) == 1
    # distiller rows get the teacher's checkpoint; the student alone does not
    for config, work_dir, options in fake.calls:
        has_ckpt = any(o.startswith('model.teacher_ckpt=') for o in options)
        assert has_ckpt == (config in ('i.py', 'f.py')), (config, options)
        if config == 'f.py':
            assert 'x=1' in options
    stored = json.load(open(h.results_path))
    assert stored['toy/fgd/1']['inputs']['teacher'] == runs.file_digest(h.teacher_checkpoint())
    assert 'randomness.seed=1' in stored['toy/fgd/1']['options']
    # a second call trains nothing
    fake.calls.clear()
    again = h.run(_jobs(h))
    assert fake.calls == [] and again.keys() == done.keys()
    assert fake.max_active <= 2


def test_stale_runs_are_retrained(harness, monkeypatch):
    h, fake = harness
    h.run(_jobs(h, seeds=(0,)))
    fake.calls.clear()
    # other data: everything is stale
    h.run(_jobs(h, seeds=(0,), inputs=dict(data='d2')))
    assert len(fake.calls) == 4
    fake.calls.clear()
    # another config content: that row reruns
    monkeypatch.setattr(runs, 'config_digest',
                        lambda config: 'digest of ' + config + (' v2' * (config == 'i.py')))
    h.run(_jobs(h, seeds=(0,), inputs=dict(data='d2')))
    assert [c[0] for c in fake.calls] == ['i.py']
    fake.calls.clear()
    # a new teacher checkpoint (its content changed): distiller rows rerun, the student not
    with open(h.teacher_checkpoint(), 'a') as f:
        f.write('retrained')
    jobs = _jobs(h, seeds=(0,), inputs=dict(data='d2'))
    h.run(jobs[1:])  # the teacher job itself is unchanged and stored
    assert sorted(c[0] for c in fake.calls) == ['f.py', 'i.py']


def test_failures_are_reported_and_dependents_skipped(tmp_path, monkeypatch):
    fake = FakeTrain(fail={'t.py'})
    monkeypatch.setattr(runs.ex, 'train', fake)
    monkeypatch.setattr(runs.Harness, '_schedule', lambda self, config: [])
    monkeypatch.setattr(runs, 'config_digest', lambda config: 'digest of ' + config)
    h = runs.Harness(_suite(), PRESETS['cpu'], str(tmp_path), jobs=1, log=lambda m: None)
    with pytest.raises(RuntimeError) as e:
        h.run(_jobs(h, seeds=(0,)))
    msg = str(e.value)
    assert 't.py diverged' in msg and 'toy/fgd/0: skipped: toy/teacher/0 failed' in msg
    # the student alone still ran and was kept
    assert list(json.load(open(h.results_path))) == ['toy/student/0']


def test_bad_jobs_argument(tmp_path):
    with pytest.raises(ValueError, match='jobs must be >= 1'):
        runs.Harness(_suite(), PRESETS['cpu'], str(tmp_path), jobs=0)


def test_a_need_nothing_provides_fails_clearly(harness):
    h, fake = harness
    jobs = _jobs(h, seeds=(0,))[2:]  # fgd without the teacher, which never ran
    with pytest.raises(RuntimeError, match='toy/teacher/0.*neither run nor stored'):
        h.run(jobs)
    assert fake.calls == []


def test_a_suite_can_reuse_another_suites_teacher(harness, tmp_path):
    """The data-free suite distils the glyph suite's teacher: its teacher job
    is that suite's, found stored and not trained again; its rows train under
    their own suite."""
    h, fake = harness
    h.run(_jobs(h, rows=('student', ), seeds=(0, )))  # toy's teacher and student
    fake.calls.clear()
    rows = {'noise': Row('n.py', twin=None), 'gen': Row('g.py', twin='noise')}
    other = Suite(name='toy-df', data=(), data_root='d/', rows=rows, default_rows=tuple(rows),
                  teacher='t.py', pretrain={}, teacher_suite='toy')
    h2 = runs.Harness(other, PRESETS['cpu'], str(tmp_path), jobs=1, threads=1,
                      log=lambda m: None)
    assert (h2.prefix, h2.teacher_prefix) == ('toy-df', 'toy')
    assert h2.teacher_checkpoint() == h.teacher_checkpoint()
    done = h2.run(_jobs(h2, rows=('noise', 'gen'), seeds=(0, )))
    assert sorted(c[0] for c in fake.calls) == ['g.py', 'n.py']  # no teacher training
    assert 'toy/teacher/0' in done and 'toy-df/gen/0' in done
    work_dirs = sorted(osp.relpath(c[1], str(tmp_path)) for c in fake.calls)
    assert work_dirs == ['toy-df/gen_seed0', 'toy-df/noise_seed0']
    assert all(f'model.teacher_ckpt={h.teacher_checkpoint()}' in c[2] for c in fake.calls)


def test_a_shared_row_reuses_the_teacher_suites_runs(harness, tmp_path):
    """The data-free upper bound is the glyph suite's inherit row: stored
    runs of it are reused, missing seeds train under that suite's key, and
    the table sees them under the row's own name."""
    h, fake = harness
    h.run(_jobs(h, rows=('inherit', ), seeds=(0, )))
    fake.calls.clear()
    rows = {'real': Row('i.py', twin=None, shared='inherit'), 'gen': Row('g.py', twin=None)}
    other = Suite(name='toy-df', data=(), data_root='d/', rows=rows, default_rows=tuple(rows),
                  teacher='t.py', pretrain={}, teacher_suite='toy')
    h2 = runs.Harness(other, PRESETS['cpu'], str(tmp_path), jobs=1, threads=1,
                      log=lambda m: None)
    assert [j.key for j in _jobs(h2, rows=('real', ), seeds=(0, 1))[1:]] == [
        'toy/inherit/0', 'toy/inherit/1']
    done = h2.run(_jobs(h2, rows=('real', 'gen'), seeds=(0, 1)))
    # seed 0 of inherit was stored with the same options and inputs
    assert sorted((c[0], osp.relpath(c[1], str(tmp_path))) for c in fake.calls) == [
        ('g.py', 'toy-df/gen_seed0'), ('g.py', 'toy-df/gen_seed1'),
        ('i.py', 'toy/inherit_seed1')]
    seen = h2.with_shared_runs(done)
    assert seen['toy-df/real/0'] is done['toy/inherit/0']
    assert seen['toy-df/real/1'] is done['toy/inherit/1']
    lone = Suite(name='lone', data=(), data_root='d/', rows=rows, default_rows=tuple(rows),
                 teacher='t.py', pretrain={})
    h3 = runs.Harness(lone, PRESETS['cpu'], str(tmp_path), jobs=1, threads=1,
                      log=lambda m: None)
    with pytest.raises(ValueError, match="row 'real' shares the runs of 'inherit'.*"
                                         'no teacher_suite'):
        h3.row_prefix('real')
