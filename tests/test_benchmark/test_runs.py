"""The harness's scheduling and result cache, with training replaced by a fake."""
import dataclasses
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
    # A row's own schedule shows as one option; the configs' are not read.
    monkeypatch.setattr(runs.Harness, '_schedule',
                        lambda self, config, iters=None: [f'schedule={iters}'] if iters else [])
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
    monkeypatch.setattr(runs.Harness, '_schedule', lambda self, config, iters=None: [])
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


def _web_suite():
    rows = {'student': Row('s.py', twin=None, distills=False),
            'kd3': Row('k.py', twin='student')}
    return Suite(name='web', data=(), data_root='d/', rows=rows, default_rows=tuple(rows),
                 teacher='t.py', pretrain={}, teacher_suite='toy',
                 pools=(('--dataset', 'glyphs-web', '--out', 'pool'), ), presets=('cpu', ))


def test_pools_are_made_and_a_shared_teacher_is_reused(harness, tmp_path, monkeypatch):
    toy, fake = harness
    toy.run(_jobs(toy, rows=('student', ), seeds=(0, )))  # the toy suite trains its teacher
    calls = []

    def make(cmd, cwd):
        calls.append(cmd)
        out = tmp_path / 'repo' / cmd[cmd.index('--out') + 1]
        out.mkdir(parents=True, exist_ok=True)
        (out / 'settings.json').write_text(json.dumps(cmd))

    monkeypatch.setattr(runs.subprocess, 'check_call', make)
    monkeypatch.setattr(runs, 'REPO', str(tmp_path / 'repo'))
    # the teacher job is the toy suite's own, with the toy suite's data
    from mmkd_plugins.benchmark import suites
    monkeypatch.setitem(suites.SUITES, 'toy', toy.suite)
    monkeypatch.setattr(runs.Harness, 'make_data', lambda self, suite=None: 'd1')
    web = runs.Harness(_web_suite(), PRESETS['cpu'], str(tmp_path), jobs=1, log=lambda m: None)
    pools = web.make_pools()
    assert calls[0][-5:] == ['--dataset', 'glyphs-web', '--out', 'pool', '--quiet']
    assert list(pools) == ['pool:pool'] and len(pools['pool:pool']) == 12
    fake.calls.clear()
    inputs = dict(data='d1')
    teacher = web.teacher_job(inputs)
    assert teacher.key == 'toy/teacher/0' and 'pool:pool' not in teacher.inputs
    done = web.run([teacher] + web.row_jobs(['student', 'kd3'], [0], dict(inputs, **pools),
                                            teacher))
    # the toy suite's teacher is stored and unchanged: only the two rows train,
    # the distiller row with the toy teacher's checkpoint
    assert [c[0] for c in fake.calls] == ['s.py', 'k.py']
    kd3 = next(c for c in fake.calls if c[0] == 'k.py')
    assert f'model.teacher_ckpt={toy.teacher_checkpoint()}' in kd3[2]
    assert kd3[1] == str(tmp_path / 'web' / 'kd3_seed0')
    assert done['web/kd3/0']['inputs']['pool:pool'] == pools['pool:pool']
    # another pool makes the rows stale, not the teacher
    fake.calls.clear()
    web.run([teacher] + web.row_jobs(['kd3'], [0], dict(inputs, **{'pool:pool': 'x'}), teacher))
    assert [c[0] for c in fake.calls] == ['k.py']


def test_a_suite_refuses_a_preset_it_has_no_configs_for(tmp_path):
    with pytest.raises(ValueError, match="suite 'web' has no configs for preset 'cuda'"):
        runs.Harness(_web_suite(), PRESETS['cuda'], str(tmp_path))


class FakeEvaluate:
    """Stands in for experiment.evaluate: records calls, returns group metrics."""

    def __init__(self):
        self.calls = []

    def __call__(self, config, checkpoint, work_dir, options, threads=None):
        self.calls.append((config, checkpoint, list(options)))
        return {'coco/bbox_mAP': 0.34, 'group/worst_bbox_mAP': 0.25, 'group/worst_group': 0}


@pytest.fixture
def group_harness(harness, monkeypatch):
    """A toy group suite that distils from the toy suite's teacher."""
    from mmkd_plugins.benchmark import suites
    h, fake = harness
    monkeypatch.setitem(suites.SUITES, 'toy', h.suite)
    monkeypatch.setattr(runs.Harness, 'make_data',
                        lambda self, suite=None: 'data of ' + (suite or self.suite).name)
    evaluate = FakeEvaluate()
    monkeypatch.setattr(runs.ex, 'evaluate', evaluate)
    rows = {'student': Row('gs.py', twin=None, distills=False),
            'kd': Row('gkd.py', twin='student'),
            'kd-early': Row('gkd.py', twin='kd', iters=600)}
    group = Suite(name='toyg', data=('--out', 'dg'), data_root='dg/', rows=rows,
                  default_rows=tuple(rows), teacher='t.py', pretrain={},
                  groups=('plain', 'photo'), teacher_suite='toy', reference='kd')
    gh = runs.Harness(group, PRESETS['cpu'], h.work_dir, jobs=2, threads=1, log=lambda m: None)
    return h, gh, fake, evaluate


def _group_jobs(gh, seeds=(0,)):
    inputs = dict(data=gh.make_data(), pretrain='p')
    teacher = gh.teacher_job(inputs)
    return [teacher, gh.teacher_eval_job(teacher, inputs)] + gh.row_jobs(
        list(gh.suite.rows), list(seeds), inputs, teacher)


def test_group_suite_distils_from_the_teacher_suite_and_evaluates_it(group_harness):
    h, gh, fake, evaluate = group_harness
    jobs = _group_jobs(gh)
    teacher, evaluation = jobs[:2]
    # The teacher suite's own job: its key, its data, its work dir.
    assert teacher.key == 'toy/teacher/0' and teacher.inputs['data'] == 'data of toy'
    done = gh.run(jobs)
    teacher_dir = osp.join(h.work_dir, 'toy', 'teacher_seed0')
    # trained once, in its own suite's folder (the student alone, which needs
    # no teacher, may start first: the harness runs two jobs at a time)
    assert [c[1] for c in fake.calls if c[0] == 't.py'] == [teacher_dir]
    ckpt = h.teacher_checkpoint()
    assert gh.teacher_checkpoint() == ckpt and ckpt.startswith(teacher_dir)
    # Rows distil from it and run in the group suite's folder.
    kd = [c for c in fake.calls if c[0] == 'gkd.py']
    assert len(kd) == 2 and all(f'model.teacher_ckpt={ckpt}' in c[2] for c in kd)
    early = {osp.basename(c[1]): 'schedule=600' in c[2] for c in kd}
    assert early == {'kd_seed0': False, 'kd-early_seed0': True}
    assert all(osp.dirname(c[1]) == osp.join(h.work_dir, 'toyg') for c in kd)
    # The teacher is evaluated once, per group, on the group suite's data.
    assert evaluate.calls == [('t.py', ckpt, ['test_dataloader.dataset.data_root=dg/',
                                              'test_evaluator.ann_file=dg/annotations/val.json',
                                              'test_evaluator.type=GroupCocoMetric'])]
    stored = json.load(open(gh.results_path))
    assert stored['toyg/teacher/0']['evaluates'] == 'toy/teacher/0'
    assert stored['toyg/teacher/0']['inputs']['teacher'] == runs.file_digest(ckpt)
    assert done['toyg/teacher/0']['group/worst_bbox_mAP'] == 0.25
    assert 'toyg/teacher/0' in done and evaluation.key == 'toyg/teacher/0'
    # Nothing runs twice: neither from this suite, nor from the teacher suite.
    fake.calls.clear()
    gh.run(_group_jobs(gh))
    inputs = dict(data=h.make_data(), pretrain='p')
    h.run([h.teacher_job(inputs)])
    assert fake.calls == [] and len(evaluate.calls) == 1


def test_schedule_options_of_a_row_and_a_preset(tmp_path, monkeypatch):
    from mmkd_plugins.experiment import schedule_options
    cpu = runs.Harness(_suite(), PRESETS['cpu'], str(tmp_path), log=lambda m: None)
    cuda = runs.Harness(_suite(), PRESETS['cuda'], str(tmp_path), log=lambda m: None)
    assert cpu._schedule('no-such-config.py') == []   # the config's own: not read
    assert cpu._schedule('no-such-config.py', 600) == schedule_options(600)
    assert cuda._schedule('no-such-config.py', 600) == schedule_options(2400)
    config = ('configs/group_dro/group-dro-kd_'
              'retinanet-r18-w16_retinanet-r50-w32_glyphs-imbalanced.py')
    assert cuda._schedule(config) == schedule_options(4800)  # 1200 x 4


@pytest.fixture
def reusing(harness, monkeypatch):
    """The toy suite as ``SUITES['toy']``, the teacher suite of others, with
    one data digest for every suite (``_jobs``'s)."""
    from mmkd_plugins.benchmark import suites
    monkeypatch.setitem(suites.SUITES, 'toy', harness[0].suite)
    monkeypatch.setattr(runs.Harness, 'make_data', lambda self, suite=None: 'd1')
    return harness


def test_a_suite_can_reuse_another_suites_teacher(reusing, tmp_path):
    """The data-free suite distils the glyph suite's teacher: its teacher job
    is that suite's, found stored and not trained again; its rows train under
    their own suite."""
    h, fake = reusing
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


def test_a_shared_row_reuses_the_teacher_suites_runs(reusing, tmp_path):
    """The data-free upper bound is the glyph suite's inherit row: stored
    runs of it are reused, missing seeds train under that suite's key, and
    the table sees them under the row's own name."""
    h, fake = reusing
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


def test_a_shared_row_must_be_the_same_run_on_the_same_data(reusing, tmp_path):
    """A shared row's jobs are the teacher suite's row's: another config,
    other options or other data would overwrite that suite's runs."""
    def harness_of(row, data=()):
        suite = Suite(name='toy-df', data=data, data_root='d/', rows={'real': row},
                      default_rows=('real', ), teacher='t.py', pretrain={},
                      teacher_suite='toy')
        return runs.Harness(suite, PRESETS['cpu'], str(tmp_path), log=lambda m: None)

    assert harness_of(Row('i.py', twin=None, shared='inherit')).row_prefix('real') == \
        'toy/inherit'
    for row in (Row('other.py', twin=None, shared='inherit'),
                Row('i.py', twin=None, shared='inherit', options=('x=1', )),
                Row('i.py', twin=None, shared='inherit', iters=600),
                Row('i.py', twin=None, shared='no-such-row')):
        with pytest.raises(ValueError, match='no such row with the same config and options'):
            harness_of(row).row_prefix('real')
    with pytest.raises(ValueError, match="of suite 'toy', whose data differ"):
        harness_of(Row('i.py', twin=None, shared='inherit'), data=('--out', 'x')).row_prefix(
            'real')


def test_a_run_another_process_is_training_is_waited_for_not_trained_twice(harness):
    """Two invocations on one work dir: the second waits on the run dir's
    lock and takes the run the first one stores, instead of training into
    the same folder (where it would read the other's metrics)."""
    import threading
    h, fake = harness
    teacher, student = _jobs(h, rows=('student', ), seeds=(0, ))
    h.run([teacher])
    fake.calls.clear()
    os.makedirs(osp.dirname(h.run_dir(student.key)), exist_ok=True)
    lock = open(h.run_dir(student.key) + '.lock', 'w')
    runs.fcntl.flock(lock, runs.fcntl.LOCK_EX)   # "the other process"
    logs = []
    h.log = logs.append

    def other_process_finishes():
        runs.save_result(h.results_path, student.key,
                         {'coco/bbox_mAP': 0.123, 'options': student.options,
                          'inputs': student.inputs, 'config': student.config})
        lock.close()   # releases the lock

    threading.Timer(0.3, other_process_finishes).start()
    done = h.run([teacher, student])
    assert done[student.key]['coco/bbox_mAP'] == 0.123
    assert fake.calls == []
    assert any('another process is running it' in m for m in logs)


def test_a_shared_row_of_a_suite_with_a_pool_reuses_the_runs_without_it(reusing, tmp_path):
    """The webly suite's upper bound is the glyph suite's inherit row; the
    web pool is an input of the web rows only, so the stored inherit runs
    are taken as they are and nothing trains again."""
    h, fake = reusing
    h.run(_jobs(h, rows=('inherit', ), seeds=(0, )))
    fake.calls.clear()
    rows = {'target': Row('i.py', twin=None, shared='inherit'), 'web': Row('w.py', twin=None)}
    webly = Suite(name='toy-web', data=(), data_root='d/', rows=rows,
                  default_rows=tuple(rows), teacher='t.py', pretrain={}, teacher_suite='toy',
                  pools=(('--out', 'pool'), ))
    h2 = runs.Harness(webly, PRESETS['cpu'], str(tmp_path), jobs=1, threads=1,
                      log=lambda m: None)
    teacher = h2.teacher_job(dict(data='d1'))  # as main() does: the pools are the rows'
    jobs = [teacher] + h2.row_jobs(['target', 'web'], [0], {'data': 'd1', 'pool:pool': 'p1'},
                                   teacher)
    assert [j.inputs.get('pool:pool') for j in jobs[1:]] == [None, 'p1']
    done = h2.run(jobs)
    assert [(c[0], osp.relpath(c[1], str(tmp_path))) for c in fake.calls] == [
        ('w.py', 'toy-web/web_seed0')]
    assert h2.with_shared_runs(done)['toy-web/target/0'] is done['toy/inherit/0']
    # the other way round, the teacher suite's pool would be missing here
    from mmkd_plugins.benchmark import suites
    suites.SUITES['toy'] = dataclasses.replace(h.suite, pools=(('--out', 'pool'), ))
    plain = dataclasses.replace(webly, pools=())
    with pytest.raises(ValueError, match="of suite 'toy', whose data differ"):
        runs.Harness(plain, PRESETS['cpu'], str(tmp_path), log=lambda m: None).row_prefix(
            'target')
