"""Model cards: what distillation buys at inference, next to the mAP.

A card compares an exported student with its teacher: parameters, FLOPs,
latency and FPS measured side by side on the same test images and device
(:mod:`.cost`), and the mAP of both from the student's zoo entry (the run's
last validation, and ``TeacherEvalHook``'s evaluation of the teacher). Its
headline is "the student keeps X % of the teacher's mAP at Y % of its FLOPs
and Z x its speed". :func:`write_card` puts it into a Markdown file between
``<!-- card:<name>:start/end -->`` markers, replacing the previous card of
that student.
"""
import datetime
import os.path as osp
import re
from typing import Dict, Optional

import torch

from .metafile import load_yaml, metafile_paths
from .resources import config_path


def _local(path: str, root: str) -> str:
    """A zoo path as a local file: a URL's file name beside the metafile,
    a relative path under ``root``."""
    if '://' in path:
        path = path.rsplit('/', 1)[-1]
    return path if osp.isabs(path) else osp.join(root, path)


def _distillation_config(entry: Dict) -> str:
    path = entry['Metadata']['Distillation Config']
    return path if osp.isabs(path) else config_path(path)


def measure(entry: Dict, root: str, device: str = 'cpu', num_images: int = 50,
            rounds: int = 3) -> Dict[str, Dict]:
    """Teacher and student cost for one zoo entry of an export folder.

    Args:
        entry (dict): A model of the export's metafile
            (:func:`.publish.zoo_entry`).
        root (str): The export folder (its ``model-index.yml``'s folder).
        device (str): ``'cpu'`` or ``'cuda[:i]'``.
        num_images (int): Test images timed per round.
        rounds (int): Rounds per model, taken in turns.

    Returns:
        dict: ``{'teacher': cost, 'student': cost}`` (see
        :func:`.cost.inference_cost`).
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from ..distillers.detection_distiller import build_detector_cfg
    from .cost import build_model, first_batches, inference_cost
    student_cfg = Config.fromfile(osp.join(root, entry['Config']))
    # Models and data are built from MMDetection's registries; a bare
    # command has no default scope yet.
    init_default_scope(student_cfg.get('default_scope', 'mmdet'))
    student = build_model(student_cfg.model, _local(entry['Weights'], root), device)
    distill_cfg = Config.fromfile(_distillation_config(entry))
    teacher_cfg = build_detector_cfg(distill_cfg.model.teacher, 'model.teacher')
    teacher_ckpt = entry['Metadata']['Teacher'].get('Weights')
    if not teacher_ckpt:
        raise ValueError(f'{entry["Name"]}: Metadata.Teacher.Weights is empty: the teacher\'s '
                         'weights are needed to time it')
    teacher = build_model(teacher_cfg, teacher_ckpt, device)
    # Both models see the student's test images: the same input for both.
    batches = first_batches(student_cfg, num_images)
    return inference_cost({'teacher': teacher, 'student': student}, batches, num_images,
                          rounds=rounds, device=device)


def headline(student_ap: float, teacher_ap: float, student: Dict, teacher: Dict) -> str:
    """The card's headline: the student keeps X % of the teacher's mAP at Y %
    of its FLOPs and Z x its speed (teacher latency / student latency)."""
    keep = 100 * student_ap / teacher_ap
    flops = 100 * student['flops'] / teacher['flops']
    speed = teacher['ms_per_img'] / student['ms_per_img']
    return (f"The student keeps {keep:.0f} % of the teacher's mAP at {flops:.0f} % of its "
            f"FLOPs and {speed:.1f}x its speed.")


def render(entry: Dict, costs: Dict[str, Dict], device: str, commands: str,
           gpu_note: Optional[str] = None) -> str:
    """The Markdown card of one student (without its markers)."""
    from .cost import device_name
    meta = entry['Metadata']
    teacher_meta = meta['Teacher']
    result = entry['Results'][0]
    dataset = result['Dataset']
    s_ap, t_ap = result['Metrics'].get('box AP'), teacher_meta.get('box AP')
    rows = []
    for role, ap, config in (('teacher', t_ap, teacher_meta['Config']),
                             ('student (distilled)', s_ap, entry['Config'])):
        c = costs[role.split()[0]]
        rows.append(f'| {role} | `{config}` | {c["params"] / 1e6:.2f} | {c["flops"] / 1e9:.3f} | '
                    f'{c["ms_per_img"]:.1f} | {c["fps"]:.1f} | '
                    f'{"n/a" if ap is None else f"{ap:.1f}"} |')
    s, t = costs['student'], costs['teacher']
    comparable = s_ap is not None and bool(t_ap)  # no ratio to a zero or missing mAP
    ratio_ap = f'{100 * s_ap / t_ap:.0f} %' if comparable else 'n/a'
    rows.append(f'| student / teacher | | {100 * s["params"] / t["params"]:.0f} % | '
                f'{100 * s["flops"] / t["flops"]:.0f} % | {100 * s["ms_per_img"] / t["ms_per_img"]:.0f} % | '
                f'{s["fps"] / t["fps"]:.1f}x | {ratio_ap} |')
    line = (headline(s_ap, t_ap, s, t) if comparable else
            'The teacher\'s mAP is missing (no `TeacherEvalHook` in the run) or zero, so '
            'only the cost is compared.')
    h, w = s['input_shape']
    timing = s['timing']
    schedule = (f'{meta["Iterations"]} iterations' if 'Iterations' in meta
                else f'{meta.get("Epochs")} epochs')
    memory = (f'{meta["Training Memory (GB)"]} GB training memory' if 'Training Memory (GB)'
              in meta else 'training memory not logged (mmengine logs it on CUDA only)')
    lines = [
        f'## {entry["Name"]}', '',
        f'{entry["In Collection"]} student distilled by `{meta["Distillation Config"]}`, '
        f'{schedule}, {memory}. Weights `{entry["Weights"]}` '
        f'(sha256 `{meta["Weights SHA256"]}`).', '',
        f'| model | config | params (M) | FLOPs (G) | latency (ms/img) | FPS | box AP ({dataset}) |',
        '|---|---|---|---|---|---|---|', *rows, '',
        f'**{line}**', '',
        f'Measured {datetime.date.today().isoformat()} on **{device_name(device)}**, '
        f'torch {torch.__version__}, FP32, batch 1, {h}x{w} padded input: the first '
        f'{timing["images"]} test images of the student\'s config, the same for both models. '
        f'Latency and FPS as MMDetection\'s `tools/analysis_tools/benchmark.py` times them '
        f'(`test_step`: preprocessing, forward, NMS; {timing["warmup"]} warm-up images '
        f'untimed), median of {timing["rounds"]} rounds in which the two models take turns '
        f'(1-minute load average {timing["load_average"]:.1f} when timing began; on a '
        f'shared machine the ratios are steadier than the times); FLOPs as its '
        f'`get_flops.py` counts them (mmengine\'s '
        f'complexity analysis, one multiply-add = one FLOP, forward without '
        f'post-processing). box AP: the run\'s last validation (student) and '
        f'`TeacherEvalHook` (teacher), from the zoo entry.',
    ]
    if gpu_note:
        lines += ['', gpu_note]
    lines += ['', 'Commands:', '', '```bash', commands, '```']
    return '\n'.join(lines)


def write_card(path: str, name: str, text: str, title: str = '# Model zoo\n') -> None:
    """Put ``text`` into the Markdown file ``path`` between the card markers
    of ``name``: in place of that card if there is one, else at the end."""
    start, end = f'<!-- card:{name}:start -->', f'<!-- card:{name}:end -->'
    block = f'{start}\n{text}\n{end}'
    doc = open(path, encoding='utf-8').read() if osp.isfile(path) else title
    pattern = re.compile(re.escape(start) + r'.*?' + re.escape(end), re.S)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: block, doc)
    else:
        doc = doc.rstrip('\n') + '\n\n' + block + '\n'
    with open(path, 'w', encoding='utf-8') as f:
        f.write(doc)


def export_entries(index_path: str):
    """``(entry, export folder)`` for every student of an export's index."""
    root = osp.dirname(osp.abspath(index_path))
    for metafile in metafile_paths(index_path):
        for entry in load_yaml(metafile).get('Models') or []:
            yield entry, root
