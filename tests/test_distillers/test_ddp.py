"""DetectionDistiller under DistributedDataParallel (2 CPU processes, gloo):
no unused parameters whether distillation is on, off or scaled to zero."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

PHASES = [('on', 2), ('disabled', 2), ('scale 0', 2), ('on again', 1)]


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _set_phase(model, phase):
    model.distill_enabled = phase != 'disabled'
    model.distill_loss_scale = 0.0 if phase == 'scale 0' else 1.0


def _worker(rank, world_size, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        from conftest import distiller_cfg
        from mmengine.model import MMDistributedDataParallel
        from mmengine.optim import OptimWrapper

        from mmdet.registry import MODELS
        from mmdet.testing import demo_mm_inputs

        torch.manual_seed(rank)  # different initial weights: DDP must sync them
        model = MODELS.build(distiller_cfg())
        model.init_weights()
        initial = {n: p.detach().clone() for n, p in model.named_parameters()}
        ddp = MMDistributedDataParallel(module=model, find_unused_parameters=False)
        synced = {n: p.detach().clone() for n, p in model.named_parameters()}
        optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
        record = dict(losses=[], adapters=[], initial=initial, synced=synced)
        step = 0
        for phase, steps in PHASES:
            _set_phase(model, phase)
            record['adapters'].append(
                {n: p.detach().clone() for n, p in model.adapters.named_parameters()})
            for _ in range(steps):
                data = demo_mm_inputs(batch_size=2, image_shapes=(3, 64, 64),
                                      num_items=[3, 3], num_classes=10)
                # demo_mm_inputs has a fixed seed: give each rank and step
                # its own images.
                gen = torch.Generator().manual_seed(100 * step + rank)
                data['inputs'] = [torch.randint(0, 256, img.shape, dtype=torch.uint8,
                                                generator=gen) for img in data['inputs']]
                # A parameter without a gradient in the previous step makes
                # this call raise ("Expected to have finished reduction ...").
                log_vars = ddp.train_step(data, optim)
                record['losses'].append((phase, log_vars['loss_fgd'].item()))
                step += 1
        record['params'] = {n: p.detach().clone() for n, p in model.named_parameters()}
        torch.save(record, os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def test_ddp_no_unused_parameters_and_ranks_agree(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(str(tmp_path / f'rank{r}.pth'), weights_only=True) for r in (0, 1))

    # Every step of every phase ran on both ranks.
    for record in (r0, r1):
        phases = [phase for phase, _ in record['losses']]
        assert phases == [p for p, n in PHASES for _ in range(n)]
        for phase, loss in record['losses']:
            assert (loss > 0) if phase.startswith('on') else (loss == 0), (phase, loss)
    # ... on different batches (the logged losses are per rank, not reduced).
    assert r0['losses'][0][1] != r1['losses'][0][1]

    # Ranks started from different weights; DDP synchronised them (rank 0's),
    # and after 7 steps on different batches the weights are still identical.
    assert any(not torch.equal(r0['initial'][n], r1['initial'][n]) for n in r0['initial'])
    for name, value in r0['initial'].items():
        assert torch.equal(r0['synced'][name], value) and torch.equal(r1['synced'][name], value)
    assert r0['params'].keys() == r1['params'].keys()
    assert any(n.startswith('adapters.') for n in r0['params'])
    for name, value in r0['params'].items():
        assert torch.equal(value, r1['params'][name]), name
    for name in ('student.backbone.conv1.weight', 'student.neck.fpn_convs.0.conv.weight',
                 'student.bbox_head.retina_cls.weight'):
        assert not torch.equal(r0['params'][name], r0['initial'][name]), name

    # The adapters learnt while distilling and got exact-zero gradients while
    # distillation was off or scaled to zero (plain SGD: no step without one).
    on, disabled, zero, on_again = r0['adapters']
    assert any(not torch.equal(on[n], disabled[n]) for n in on)
    for name in on:
        assert torch.equal(disabled[name], zero[name]), name
        assert torch.equal(zero[name], on_again[name]), name
    assert any(not torch.equal(on_again[n], r0['params'][f'adapters.{n}']) for n in on)
