"""``mmkd-export --publish``: a tiny trained student is exported, its zoo
entry is read back and validated, and its model card is written."""
import glob
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from conftest import distiller_cfg, runner_cfg, tiny_retinanet
from mmengine.config import Config
from mmengine.runner import Runner

from mmdet.registry import MODELS
from mmkd_plugins import config_path
from mmkd_plugins.cli import export
from mmkd_plugins.experiment import final_metrics
from mmkd_plugins.zoo.card import export_entries, measure
from mmkd_plugins.zoo.metafile import load_yaml, validate_index
from mmkd_plugins.zoo.publish import run_record, shipped_config_name

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def trained_run(tmp_path_factory, digits_root):
    """A 2-iteration FGD run on the tiny digits, with a teacher checkpoint
    and TeacherEvalHook, trained from its config file as tools/train.py does."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp('publish')
    torch.manual_seed(0)
    teacher = MODELS.build(tiny_retinanet(width=16, fpn=32))
    teacher_ckpt = str(root / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, teacher_ckpt)
    model = distiller_cfg(teacher_ckpt=teacher_ckpt)
    model['student']['test_cfg']['score_thr'] = 0.0  # an untrained student scores low
    model['teacher']['test_cfg']['score_thr'] = 0.0
    work_dir = str(root / 'work')
    cfg = runner_cfg(digits_root, work_dir, model, max_iters=2, checkpoint_interval=2,
                     val=True, custom_hooks=[dict(type='TeacherEvalHook')],
                     custom_imports=dict(imports=['mmkd_plugins'], allow_failed_imports=False))
    cfg.train_cfg.val_interval = 2
    cfg.test_dataloader, cfg.test_cfg, cfg.test_evaluator = (
        cfg.val_dataloader, cfg.val_cfg, cfg.val_evaluator)
    config = str(root / 'fgd_tiny.py')
    cfg.dump(config)
    Runner.from_cfg(Config.fromfile(config)).train()
    torch.set_num_threads(threads)
    return dict(root=root, config=config, checkpoint=osp.join(work_dir, 'iter_2.pth'),
                work_dir=work_dir, teacher_ckpt=teacher_ckpt)


@pytest.fixture(scope='module')
def published(trained_run):
    out = trained_run['root'] / 'export'
    export([trained_run['config'], trained_run['checkpoint'], '--out', str(out), '--publish',
            '--collection', 'FGD', '--dataset', 'digits', '--images', '4'])
    return out


def test_entry_reads_back_valid(trained_run, published):
    index = str(published / 'model-index.yml')
    assert validate_index(index) == []
    data = load_yaml(str(published / 'metafile.yml'))
    assert [c['Name'] for c in data['Collections']] == ['FGD']
    assert data['Collections'][0]['Paper']['URL'] == 'https://arxiv.org/abs/2111.11837'
    (entry,) = data['Models']
    assert entry['Name'] == 'fgd_tiny_student'
    assert entry['In Collection'] == 'FGD'
    assert entry['Config'] == 'fgd_tiny_student.py'
    assert 'Distill' not in (published / entry['Config']).read_text()

    # The weights file carries its hash, and the entry its full digest.
    weights = published / entry['Weights']
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert entry['Weights'] == f'fgd_tiny_student-{digest[:8]}.pth'
    meta = entry['Metadata']
    assert meta['Weights SHA256'] == digest

    # Results: the run's last validation, in percent.
    logged = final_metrics(trained_run['work_dir'])
    (result,) = entry['Results']
    assert result['Dataset'] == 'digits' and result['Task'] == 'Object Detection'
    assert result['Metrics']['box AP'] == round(100 * logged['coco/bbox_mAP'], 1)
    assert result['Metrics']['AP50'] == round(100 * logged['coco/bbox_mAP_50'], 1)
    assert meta['Results Source']['digits'].startswith('measured here')

    # Teacher as trained, with TeacherEvalHook's mAP.
    assert meta['Teacher']['Weights'] == trained_run['teacher_ckpt']
    (teacher_json,) = glob.glob(osp.join(trained_run['work_dir'], '*', 'teacher_metrics.json'))
    teacher_json = json.load(open(teacher_json))
    assert meta['Teacher']['box AP'] == round(100 * teacher_json['teacher/coco/bbox_mAP'], 1)
    assert meta['Distillation Config'] == osp.realpath(trained_run['config'])
    assert meta['Iterations'] == 2 and 'Epochs' not in meta

    # Inference cost of the exported student.
    student = MODELS.build(Config.fromfile(str(published / entry['Config'])).model)
    assert meta['Parameters'] == sum(p.numel() for p in student.parameters())
    assert meta['FLOPs'] > 1e6
    (timing,) = meta['inference time (ms/im)']
    assert timing['value'] > 0 and timing['batch size'] == 1
    assert timing['resolution'] == '(64, 64)'
    # mmengine logs memory on CUDA only; this CPU run has none, so the
    # entry says nothing rather than a made-up number.
    assert 'Training Memory (GB)' not in meta


def test_republish_updates_the_entry(trained_run, published, capsys):
    """A second export replaces the entry of the same name, keeping one."""
    export([trained_run['config'], trained_run['checkpoint'], '--out', str(published),
            '--publish', '--collection', 'FGD', '--dataset', 'digits', '--images', '2',
            '--weights-url', 'https://example.org/zoo/'])
    data = load_yaml(str(published / 'metafile.yml'))
    assert len(data['Models']) == 1 and len(data['Collections']) == 1
    entry = data['Models'][0]
    weights = 'fgd_tiny_student-' + entry['Metadata']['Weights SHA256'][:8] + '.pth'
    assert entry['Weights'] == 'https://example.org/zoo/' + weights
    out = capsys.readouterr().out
    assert f'checkpoint: {published / weights}' in out
    assert f'sha256:     {entry["Metadata"]["Weights SHA256"]}' in out
    assert f'zoo entry:  fgd_tiny_student in {published / "metafile.yml"}' in out


def test_unlisted_config_needs_a_collection(trained_run, tmp_path):
    with pytest.raises(ValueError, match=r'fgd_tiny.py is not listed in any metafile .*'
                                         r'--collection'):
        export([trained_run['config'], trained_run['checkpoint'], '--out', str(tmp_path / 'o'),
                '--publish'])
    assert not osp.exists(tmp_path / 'o')
    with pytest.raises(ValueError, match="collection 'FDG' is not one of"):
        export([trained_run['config'], trained_run['checkpoint'], '--out', str(tmp_path / 'o'),
                '--publish', '--collection', 'FDG'])


def test_run_record_reads_peak_memory(tmp_path):
    """A CUDA run logs ``memory`` (MB) on its training lines; the entry takes the peak."""
    log_dir = tmp_path / '20261129_000000' / 'vis_data'
    log_dir.mkdir(parents=True)
    lines = [{'loss': 1.0, 'memory': 900, 'iter': 1}, {'loss': 0.9, 'memory': 1200, 'iter': 2},
             {'coco/bbox_mAP': 0.25, 'iter': 2}]
    (log_dir / 'scalars.json').write_text('\n'.join(json.dumps(x) for x in lines) + '\n')
    record = run_record(str(tmp_path / 'iter_2.pth'))
    assert record['memory_mb'] == 1200
    assert record['metrics'] == {'coco/bbox_mAP': 0.25}
    assert record['teacher'] is None


def test_model_card_of_the_export(trained_run, published, tmp_path):
    """tools/model_card.py in a fresh process (no registry scope set by
    earlier tests), then the card's deterministic numbers checked here."""
    doc = tmp_path / 'model_zoo.md'
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'model_card.py'), str(published), '--out',
         str(doc), '--images', '2', '--rounds', '1', '--train-command', 'make demo'],
        cwd=str(trained_run['root']), capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'fgd_tiny_student: card written to {doc}' in proc.stdout
    written = doc.read_text()
    assert written.startswith('# Model zoo\n')
    assert '<!-- card:fgd_tiny_student:start -->' in written
    assert 'CPU, 1 thread' in written
    assert 'GPU: not measured' in written
    assert 'make demo\npython tools/model_card.py ' in written

    ((entry, root),) = export_entries(str(published / 'model-index.yml'))
    costs = measure(entry, root, num_images=2, rounds=1)
    s, t = costs['student'], costs['teacher']
    assert t['flops'] > 2 * s['flops'] and t['params'] > 2 * s['params']
    assert f'| student / teacher | | {100 * s["params"] / t["params"]:.0f} % | ' \
           f'{100 * s["flops"] / t["flops"]:.0f} % |' in written
    assert f'| `{entry["Config"]}` | {s["params"] / 1e6:.2f} | {s["flops"] / 1e9:.3f} |' \
        in written
    # The random teacher of this run has zero mAP: no ratio is made up.
    assert 'only the cost is compared' in written


def test_entries_name_shipped_configs_as_the_metafiles_do(tmp_path):
    name = 'fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py'
    assert shipped_config_name(config_path(name)) == 'configs/' + name
    mine = tmp_path / 'mine.py'
    mine.write_text('')
    assert shipped_config_name(str(mine)) == osp.realpath(mine)
