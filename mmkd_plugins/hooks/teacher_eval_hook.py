"""Evaluate the teacher once, before training, with the validation setup.

The teacher's metrics are logged with a ``teacher/`` prefix beside the
student's (text log, message hub, visualizer backends such as TensorBoard)
and written to ``<log_dir>/teacher_metrics.json``, so that a run's log shows
the gap the student is closing.
"""
import json
import os.path as osp

import torch
from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from .utils import get_distiller


@HOOKS.register_module()
class TeacherEvalHook(Hook):
    """Run the validation loop once with the teacher's predictions.

    Args:
        skip_on_resume (bool): Do nothing when training resumes mid-way
            (the first run has logged it). Default True.
    """
    priority = 'LOW'

    def __init__(self, skip_on_resume: bool = True):
        self.skip_on_resume = skip_on_resume

    def before_train(self, runner) -> None:
        model = get_distiller(runner, type(self).__name__)
        if self.skip_on_resume and runner.iter > 0:
            return
        loop = runner.val_loop
        if loop is None or not hasattr(loop, 'dataloader'):
            raise ValueError('TeacherEvalHook needs val_dataloader, val_cfg and '
                             'val_evaluator in the config')
        runner.model.eval()
        with model.teacher_predicts(), torch.no_grad():
            for data_batch in loop.dataloader:
                outputs = runner.model.val_step(data_batch)
                loop.evaluator.process(data_samples=outputs, data_batch=data_batch)
            metrics = loop.evaluator.evaluate(len(loop.dataloader.dataset))
        runner.model.train()
        metrics = {f'teacher/{k}': float(v) for k, v in metrics.items()
                   if isinstance(v, (int, float))}
        for key, value in metrics.items():
            runner.message_hub.update_scalar(key, value)
        runner.visualizer.add_scalars(metrics, step=runner.iter)
        runner.logger.info('Teacher: ' + '  '.join(f'{k}: {v:.4f}' for k, v in metrics.items()))
        with open(osp.join(runner.log_dir, 'teacher_metrics.json'), 'w') as f:
            json.dump(metrics, f, indent=2)
