"""What a detector costs at inference: parameters, FLOPs, latency and FPS.

Measured the way MMDetection's own analysis tools measure them, so that the
numbers compare with its model zoo:

* FLOPs as ``tools/analysis_tools/get_flops.py`` counts them: mmengine's
  ``get_model_complexity_info`` on the preprocessed images of the config's
  data loader, one image at a time, through the model's ``tensor`` forward
  (backbone, neck and head, no post-processing), averaged over the images.
  mmengine counts a multiply-add as one FLOP.
* Latency and FPS as ``InferenceBenchmark.run_once`` in
  ``mmdet/utils/benchmark.py`` (behind ``tools/analysis_tools/benchmark.py``)
  times them: batch size 1, no loader workers, ``model.test_step`` (data
  preprocessing, forward and post-processing such as NMS) timed with
  ``time.perf_counter`` after a few warm-up images, CUDA synchronised around
  each image. MMDetection's class only runs on CUDA (it calls ``.cuda()``
  and ``torch.cuda.synchronize()`` unconditionally), hence this copy of its
  timing loop that also runs on the CPU.
"""
import os
import platform
import statistics
import time
from functools import partial
from typing import Dict, List, Optional, Sequence

import torch


def device_name(device: str = 'cpu') -> str:
    """The hardware a latency was measured on, as a model card names it:
    the GPU's name, or the CPU's model and the intra-op thread count."""
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(torch.device(device))
    name = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    name = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f'{name} (CPU, {threads} thread{"s" if threads > 1 else ""})'


def build_model(model_cfg, checkpoint: Optional[str], device: str = 'cpu'):
    """A detector in eval mode on ``device`` with ``checkpoint`` loaded
    (strictly: a checkpoint that does not fit is an error, not a silent
    random model)."""
    from mmengine.config import ConfigDict
    from mmengine.model import revert_sync_batchnorm
    from mmengine.runner import load_checkpoint

    from mmdet.registry import MODELS
    # Heads read test_cfg by attribute, which a plain dict does not allow.
    model = MODELS.build(ConfigDict(model_cfg))
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    model = revert_sync_batchnorm(model).to(device)
    model.eval()
    return model


def first_batches(cfg, num_images: int) -> List[dict]:
    """The first ``num_images`` images of ``cfg.test_dataloader`` as
    batch-size-1 batches, as both MMDetection tools feed them."""
    from mmengine.runner import Runner
    loader_cfg = dict(cfg.test_dataloader, batch_size=1, num_workers=0,
                      persistent_workers=False)
    batches = []
    for batch in Runner.build_dataloader(loader_cfg):
        batches.append(batch)
        if len(batches) == num_images:
            break
    if not batches:
        raise ValueError('test_dataloader yields no images: is the dataset there?')
    return batches


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model, batches: Sequence[dict]) -> Dict:
    """Mean FLOPs per image and the input shape after padding, as
    ``get_flops.py`` computes them."""
    from mmengine.analysis import get_model_complexity_info
    flops, shape = [], None
    forward = model.forward
    try:
        with torch.no_grad():
            for batch in batches:
                data = model.data_preprocessor(batch)
                sample = data['data_samples'][0]
                shape = tuple(getattr(sample, 'batch_input_shape', sample.pad_shape))
                model.forward = partial(forward, data_samples=data['data_samples'])
                out = get_model_complexity_info(model, None, inputs=data['inputs'],
                                                show_table=False, show_arch=False)
                flops.append(out['flops'])
    finally:
        model.forward = forward
    return {'flops': int(statistics.mean(flops)), 'input_shape': shape}


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_inference(model, batches: Sequence[dict], num_images: int, warmup: int = 5,
                   device: str = 'cpu') -> Dict[str, float]:
    """Latency and FPS over ``num_images`` timed images after ``warmup``
    untimed ones (``batches`` is cycled through when shorter).

    Returns:
        dict: ``ms_per_img`` and ``fps`` (``1000 / ms_per_img``).
    """
    pure_inf_time = 0.0
    for i in range(warmup + num_images):
        data = batches[i % len(batches)]
        _sync(device)
        start = time.perf_counter()
        with torch.no_grad():
            model.test_step(data)
        _sync(device)
        if i >= warmup:
            pure_inf_time += time.perf_counter() - start
    fps = num_images / pure_inf_time
    return {'ms_per_img': 1000 / fps, 'fps': fps}


def inference_cost(models: Dict[str, object], batches: Sequence[dict], num_images: int,
                   warmup: int = 5, rounds: int = 3, device: str = 'cpu') -> Dict[str, Dict]:
    """Parameters, FLOPs, latency and FPS of several models on the same images.

    The models are timed in turn, ``rounds`` times, and each one's median
    round is kept: on a shared machine the load drifts, and taking turns
    spreads that drift over all models instead of charging it to one.

    Args:
        models (dict): ``{name: model}``, each built by :func:`build_model`.
        batches (list): Batch-size-1 batches (:func:`first_batches`).
        num_images (int): Timed images per round.
        warmup (int): Untimed images before each round.
        rounds (int): Rounds per model.
        device (str): Where the models are, for synchronisation.

    Returns:
        dict: ``{name: {'params', 'flops', 'input_shape', 'ms_per_img', 'fps',
        'timing'}}``; ``timing`` holds the settings (images, warm-up, rounds)
        and the 1-minute load average before timing, for the record.
    """
    timing = {'images': num_images, 'warmup': warmup, 'rounds': rounds,
              'load_average': os.getloadavg()[0]}
    costs = {name: {'params': count_parameters(m), **count_flops(m, batches), 'timing': timing}
             for name, m in models.items()}
    times = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            times[name].append(time_inference(model, batches, num_images, warmup,
                                              device)['ms_per_img'])
    for name in models:
        ms = statistics.median(times[name])
        costs[name].update(ms_per_img=ms, fps=1000 / ms)
    return costs
