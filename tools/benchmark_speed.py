"""Training-step time and peak memory of distillation vs. the student alone.

All variants are built in one process and stepped in turn (A, B, A, B, ...),
so that machine noise hits them alike; the figures are medians over
``--steps`` steps after ``--warmup``, and ratios are to the first variant.

Peak memory is what one training step allocates above what was allocated
before it: on CUDA from ``torch.cuda.max_memory_allocated``, on the CPU from
the profiler's allocation events (summed in time order).

    python tools/benchmark_speed.py                      # demo student vs + FGD
    python tools/benchmark_speed.py --device cuda --size 800 1333 --batch 2 \\
        --variant student=mmdet::retinanet/retinanet_r50_fpn_1x_coco.py \\
        --variant fgd=configs/fgd/fgd_retinanet-r50_retinanet-r101_2x_coco.py

``--set NAME.KEY=VALUE`` overrides one key of variant NAME's config (dotted
path, value read as a Python literal), so one config can be timed at several
settings::

    python tools/benchmark_speed.py --variant fgd=configs/fgd/X.py \\
        --variant uet4=configs/uet/Y.py \\
        --set uet4.model.distill_losses.loss_fgd.mc_dropout.passes=4

A two-view variant (``views=TwoViews``, e.g. ``CrossViewDistiller``) gets
each image as a weak view (as is) and a strong view (photometric change,
same boxes): the same N images, 2N forward passes per model::

    python tools/benchmark_speed.py --variant student=configs/demo/retinanet_r18-w16_digits.py \\
        --variant kd=configs/cross_view/kd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py \\
        --variant crld=configs/cross_view/crld_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py

A group-DRO variant (``objective=GroupDRO``, e.g. ``GroupDRODistiller``)
gets the synthetic images' groups round-robin from its ``groups`` (a batch
of 8 over 4 groups: 4 sub-batches of 2, the most sub-batches that batch can
have)::

    python tools/benchmark_speed.py \\
        --variant kd=configs/group_dro/kd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits-imbalanced.py \\
        --variant groupdro=configs/group_dro/group-dro-kd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits-imbalanced.py
"""
import argparse
import ast
import copy
import os.path as osp
import statistics
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

DEFAULT_VARIANTS = [
    'student=configs/demo/retinanet_r18-w16_digits.py',
    'fgd=configs/fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py',
]


def parse_overrides(items, names):
    """``['NAME.a.b=1', ...]`` -> ``{NAME: {'a.b': 1}}``; values are Python
    literals, anything else a string."""
    overrides = {name: {} for name in names}
    for item in items or ():
        target, sep, value = item.partition('=')
        name, dot, key = target.partition('.')
        if not sep or not dot or name not in overrides:
            raise ValueError(f'--set needs NAME.KEY=VALUE with NAME one of '
                             f'{list(names)}, got {item!r}')
        try:
            overrides[name][key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[name][key] = value
    return overrides


def build_model(config: str, device: str, overrides=None):
    """The config's model; a distiller gets a random teacher (speed only)."""
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmkd_plugins.distillers.detection_distiller import build_detector_cfg
    if '::' in config:
        if overrides:
            raise ValueError(f'--set works on config files, not on {config!r}')
        model_cfg = build_detector_cfg(config, 'config')
    else:
        cfg = Config.fromfile(config)
        cfg.merge_from_dict(overrides or {})
        model_cfg = cfg.model
    from mmkd_plugins.distillers import is_distiller_type
    if is_distiller_type(model_cfg.get('type')):
        model_cfg.teacher_ckpt = None
        model_cfg.probe_size = (128, 128)
    return MODELS.build(model_cfg).to(device).train()


def make_data(batch: int, size, num_classes: int, boxes: int, seed: int = 0):
    from mmdet.testing import demo_mm_inputs
    torch.manual_seed(seed)
    return demo_mm_inputs(batch_size=batch, image_shapes=(3, *size),
                          num_items=[boxes] * batch, num_classes=num_classes)


def with_groups(data: dict, model) -> dict:
    """``data`` with a ``group`` in each sample's metainfo, round-robin over
    the objective's ``groups`` when the model trains with group DRO (the
    synthetic samples have none); other models get ``data`` unchanged."""
    from mmkd_plugins.distillers import GroupDRO
    dro = getattr(model, 'objective', None)
    if not isinstance(dro, GroupDRO):
        return data
    data = copy.deepcopy(data)
    for i, sample in enumerate(data['data_samples']):
        sample.set_metainfo({dro.group_key: dro.groups[i % len(dro.groups)]})
    return data


def with_views(data: dict, model) -> dict:
    """For a model that trains on two views (``TwoViews``): ``data`` as two
    views, the weak one the images as they are and the strong one a
    photometric change of them (contrast, brightness, one cut-out square)
    with the same boxes, the way the two-view pipeline makes them. Other
    models get ``data`` unchanged."""
    from mmkd_plugins.distillers import TwoViews
    if not isinstance(getattr(model, 'views', None), TwoViews):
        return data
    strong = []
    for img in data['inputs']:
        img = (img.float() * 0.7 + 40).clamp(0, 255)
        h, w = img.shape[-2:]
        img[:, h // 3:h // 3 + h // 8, w // 3:w // 3 + w // 8] = 0
        strong.append(img.to(torch.uint8))
    return {'inputs': {'weak': data['inputs'], 'strong': strong},
            'data_samples': {'weak': data['data_samples'],
                             'strong': copy.deepcopy(data['data_samples'])}}


def torch_sigmoid_focal_loss(pred, target, gamma, alpha, weight=None, reduction='none'):
    """mmcv's ``sigmoid_focal_loss`` in PyTorch, for the call mmdet makes
    (no class weight, ``reduction='none'``): ``pred`` (N, C) logits,
    ``target`` (N,) labels in [0, C], C meaning background; returns (N, C)."""
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
    if weight is not None or reduction != 'none':
        raise NotImplementedError('the PyTorch focal loss stands in for mmdet\'s call only: '
                                  f'weight=None, reduction="none" (got {reduction!r})')
    num_classes = pred.size(1)
    onehot = torch.nn.functional.one_hot(target, num_classes + 1)[:, :num_classes]
    return py_sigmoid_focal_loss(pred, onehot.type_as(pred), None, gamma, alpha, 'none')


def focal_loss_fallback(device: str) -> str:
    """mmdet's ``FocalLoss`` calls mmcv's CUDA kernel for CUDA tensors. Where
    mmcv was built without its CUDA ops (a CPU-ops build carried to a GPU
    machine), route that call to an elementwise PyTorch version (same value,
    a few more kernels) and return a note for the header; else ``''``."""
    if not device.startswith('cuda'):
        return ''
    from mmdet.models.losses import focal_loss
    pred = torch.zeros(2, 3, device=device)
    target = torch.zeros(2, dtype=torch.long, device=device)
    try:
        focal_loss._sigmoid_focal_loss(pred, target, 2.0, 0.25, None, 'none')
        return ''
    except RuntimeError:
        pass
    focal_loss._sigmoid_focal_loss = torch_sigmoid_focal_loss
    return ' | focal loss in PyTorch (mmcv without CUDA ops)'


def sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def peak_step_memory(step, device: str) -> float:
    """MiB allocated at the peak of one ``step()`` above the level before."""
    if device.startswith('cuda'):
        sync(device)
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        sync(device)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == '[memory]'),
                    key=lambda e: e.start_ns())
    current = peak = 0
    for e in events:
        current += e.nbytes()
        peak = max(peak, current)
    return peak / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--variant', action='append', metavar='NAME=CONFIG',
                        help='a model to time (repeatable); the first is the reference')
    parser.add_argument('--set', action='append', metavar='NAME.KEY=VALUE',
                        help='override a config key of variant NAME (repeatable)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, nargs=2, default=(128, 128), metavar=('H', 'W'))
    parser.add_argument('--num-classes', type=int, default=10)
    parser.add_argument('--boxes', type=int, default=3, help='GT boxes per image')
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--amp', action='store_true', help='autocast (CUDA: fp16, CPU: bf16)')
    args = parser.parse_args(argv)

    import mmkd_plugins  # noqa: F401
    from mmengine.optim import OptimWrapper
    from mmdet.utils import register_all_modules
    register_all_modules()
    note = focal_loss_fallback(args.device)

    specs = []
    for spec in args.variant or DEFAULT_VARIANTS:
        name, sep, config = spec.partition('=')
        if not sep:
            parser.error(f'--variant needs NAME=CONFIG, got {spec!r}')
        if '.' in name:
            parser.error(f'--variant NAME may not contain ".", got {name!r}')
        specs.append((name, config))
    try:
        overrides = parse_overrides(args.set, [name for name, _ in specs])
    except ValueError as e:
        parser.error(str(e))
    variants = []
    for name, config in specs:
        model = build_model(config, args.device, overrides[name])
        optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-4))
        variants.append((name, config, model, optim))
    data = make_data(args.batch, args.size, args.num_classes, args.boxes)

    def step_fn(model, optim):
        model_data = with_views(with_groups(data, model), model)

        def step():
            autocast = torch.autocast(
                'cuda' if args.device.startswith('cuda') else 'cpu',
                dtype=torch.float16 if args.device.startswith('cuda') else torch.bfloat16,
                enabled=args.amp)
            with autocast:
                model.train_step(copy.deepcopy(model_data), optim)
        return step

    # Each variant's batch (groups, views) is prepared once; a step deep-copies it.
    steps = {name: step_fn(model, optim) for name, _, model, optim in variants}
    times = {name: [] for name in steps}
    for i in range(args.warmup + args.steps):
        for name, step in steps.items():
            sync(args.device)
            start = time.perf_counter()
            step()
            sync(args.device)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    memory = {name: peak_step_memory(step, args.device) for name, step in steps.items()}

    device_name = (torch.cuda.get_device_name() if args.device.startswith('cuda')
                   else f'CPU, {torch.get_num_threads()} threads')
    print(f'device: {device_name} | torch {torch.__version__} | batch {args.batch} | '
          f'{args.size[0]}x{args.size[1]} | {args.steps} steps (median) | amp {args.amp}{note}')
    ref_name = variants[0][0]
    ref_t, ref_m = statistics.median(times[ref_name]), memory[ref_name]
    print('| variant | step time (ms) | ratio | peak step memory (MiB) | ratio |')
    print('|---|---|---|---|---|')
    for name, *_ in variants:
        t = statistics.median(times[name])
        print(f'| {name} | {t * 1e3:.1f} | {t / ref_t:.2f} | {memory[name]:.0f} | '
              f'{memory[name] / ref_m:.2f} |')


if __name__ == '__main__':
    main()
