"""How hard each loss entry pulls on the student: value and gradient norm.

    python tools/loss_scale.py CONFIG [--teacher-ckpt TEACHER.pth] \\
        [--checkpoint work_dirs/x/iter_N.pth] [--batches 2] [--seed 0] \\
        [--cfg-options KEY=VALUE ...]

Builds the config's model (any distiller, or a plain detector), takes
``--batches`` training batches, and prints for every loss entry the median
over the batches of

* its value, as the training log would show it;
* the L2 norm of its gradient on the student's trainable parameters (the
  teacher is frozen; a distiller's own adapters are left out, they only
  exist to serve their loss), overall and within each top-level module of
  the student (backbone, neck, heads): where each loss pulls;

and a ``total`` row for the sum of all entries, the gradient that the
optimizer wrapper's ``clip_grad`` sees. Use it before training to choose loss
weights: an entry whose gradient is tens of times the detection losses'
decides the early updates alone (docs/cross_view.md, "Loss scale on the
demo"). The student is at its initialisation, in training mode, or, with
``--checkpoint``, at a checkpoint of a training run of the same config: how
the balance has moved since.
"""
import argparse
import math
import os.path as osp
import statistics
from typing import Dict, Iterable, List

import torch
from torch import Tensor, nn


def _as_tensor(value) -> Tensor:
    # Dense heads report some entries per level, as lists; mmengine sums them.
    return sum(value) if isinstance(value, (list, tuple)) else value


def student_of(model: nn.Module) -> nn.Module:
    """The module whose parameters are trained: ``model.student`` for a
    distiller, the model itself for a plain detector."""
    return getattr(model, 'student', model)


def _groups(student: nn.Module) -> Dict[str, List[nn.Parameter]]:
    """The student's trainable parameters by top-level module (``backbone``,
    ``neck``, ``bbox_head``, ...), in registration order."""
    groups: Dict[str, List[nn.Parameter]] = {}
    for name, p in student.named_parameters():
        if p.requires_grad:
            groups.setdefault(name.split('.', 1)[0], []).append(p)
    return groups


def loss_scale(model: nn.Module, batches: Iterable[dict]) -> Dict[str, List[Dict[str, float]]]:
    """Value and student gradient norm of every loss entry, per batch.

    Args:
        model (nn.Module): a distiller or a detector, in training mode.
        batches (Iterable[dict]): preprocessed batches, each with ``inputs``
            and ``data_samples`` (the data preprocessor's output).

    Returns:
        dict: entry name -> one dict per batch with ``value``, ``grad`` (the
        gradient norm over all the student's trainable parameters) and the
        norm within each top-level student module (``backbone``, ``neck``,
        ...), in the order of the loss dict, with ``'total'`` (the sum of
        the entries) last.
    """
    groups = _groups(student_of(model))
    if not groups:
        raise ValueError('the student has no trainable parameters')
    params = [p for ps in groups.values() for p in ps]
    out: Dict[str, List[Dict[str, float]]] = {}
    n = 0
    for batch in batches:
        losses = model.loss(batch['inputs'], batch['data_samples'])
        entries = {k: _as_tensor(v) for k, v in losses.items() if 'loss' in k}
        if not entries:
            raise ValueError(f'the model returned no loss entries (keys {sorted(losses)})')
        entries['total'] = sum(entries.values())
        for name, value in entries.items():
            grads = iter(torch.autograd.grad(value, params, retain_graph=True,
                                             allow_unused=True))
            row = {'value': float(value.detach())}
            squares = {}
            for group, ps in groups.items():
                squares[group] = sum(float((g.detach() ** 2).sum())
                                     for g in (next(grads) for _ in ps) if g is not None)
            row['grad'] = math.sqrt(sum(squares.values()))
            row.update({group: math.sqrt(sq) for group, sq in squares.items()})
            out.setdefault(name, []).append(row)
        n += 1
    if n == 0:
        raise ValueError('no batches: the training dataloader is empty')
    return out


def table(stats: Dict[str, List[Dict[str, float]]]) -> str:
    """Markdown table of the medians over the batches."""
    columns = list(next(iter(stats.values()))[0])
    groups = columns[2:]
    lines = ['| entry | value | gradient norm on the student | '
             + ' | '.join(f'in {g}' for g in groups) + ' |',
             '|---' * (len(columns) + 1) + '|']
    for name, rows in stats.items():
        medians = [statistics.median(r[c] for r in rows) for c in columns]
        lines.append(f'| {name} | ' + ' | '.join(f'{m:.4g}' for m in medians) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a distillation (or detector) config')
    parser.add_argument('--teacher-ckpt', help="overrides the config's teacher_ckpt")
    parser.add_argument('--checkpoint', help='a training checkpoint of this config to start '
                        'from (default: the student at initialisation)')
    parser.add_argument('--batches', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='config overrides, as in tools/train.py')
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error(f'--batches must be at least 1, got {args.batches}')
    if not osp.isfile(args.config):
        parser.error(f'{args.config}: no such config')

    import mmkd_plugins  # noqa: F401
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    from mmkd_plugins.experiment import scratch_runner
    register_all_modules()
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    if args.teacher_ckpt is not None:
        if 'teacher_ckpt' not in cfg.model:
            parser.error(f'--teacher-ckpt given, but {args.config} is not a distiller config')
        if not osp.isfile(args.teacher_ckpt):
            parser.error(f'--teacher-ckpt {args.teacher_ckpt}: no such file')
        cfg.model.teacher_ckpt = args.teacher_ckpt
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        parser.error(f'--checkpoint {args.checkpoint}: no such file')
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.randomness = dict(seed=args.seed)
    with scratch_runner(cfg, 'loss_scale') as runner:
        model = runner.model
        model.init_weights()  # what Runner.train() does first (e.g. RetinaNet's prior bias)
        if args.checkpoint is not None:
            from mmengine.runner import load_checkpoint
            try:  # strict: a checkpoint of another model fails, naming the keys
                load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True,
                                logger='current')
            except RuntimeError as e:
                parser.error(f'--checkpoint {args.checkpoint} does not match '
                             f'{args.config}: {e}')
        model.train()
        loader = iter(runner.build_dataloader(cfg.train_dataloader, seed=args.seed))

        def batches():
            for _ in range(args.batches):
                try:
                    data = next(loader)
                except StopIteration:
                    return
                yield model.data_preprocessor(data, True)
        stats = loss_scale(model, batches())
    state = (f'the student of {args.checkpoint}' if args.checkpoint
             else 'the student at initialisation')
    print(f'{args.config}: {len(stats["total"])} training batches, seed {args.seed}, {state}\n')
    print(table(stats))


if __name__ == '__main__':
    main()
