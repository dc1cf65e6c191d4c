"""The teacher's detections as the ground truth of unlabelled images.

A web pool has no boxes, but some host losses read them: FGD's foreground
and background masks come from each image's ``gt_instances``. With
:class:`TeacherPseudoBoxes` as the objective, every training batch first
runs the teacher's ``predict`` (in the input's coordinates, under
``no_grad``) and its detections scoring at least ``score_thr`` become the
images' ``gt_instances``; then the step runs as usual. So KD^3 on a web pool
can add FGD (``docs/webly.md``)::

    model = dict(..., detection_loss=False,
                 objective=dict(type='TeacherPseudoBoxes', score_thr=0.5),
                 distill_losses=dict(loss_fgd=dict(loss=dict(type='FGDLoss', ...)), ...))

It costs one more teacher pass (with NMS) per step. With
``detection_loss=True`` the student also trains on the pseudo-boxes
(pseudo-labelling).
"""
from typing import Dict

import torch
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmdet.registry import MODELS
from ..checks import check_number
from .parts import Batch, WholeBatch


@MODELS.register_module()
class TeacherPseudoBoxes(WholeBatch):
    """An objective: the teacher's detections become the batch's ground
    truth, then one step over the whole batch (module docstring).

    Args:
        score_thr (float): Least score of a detection kept as a box, in
            [0, 1]. Default 0.5.
    """

    def __init__(self, score_thr: float = 0.5):
        self.score_thr = check_number('objective.score_thr', score_thr, max_value=1.0)

    @torch.no_grad()
    def label(self, teacher: nn.Module, batch: Batch) -> None:
        """Replace every sample's ``gt_instances`` by the teacher's boxes."""
        was_training = teacher.training
        teacher.eval()
        try:
            preds = teacher.predict(batch.inputs, [s.clone() for s in batch.data_samples],
                                    rescale=False)
        finally:
            teacher.train(was_training)
        for sample, pred in zip(batch.data_samples, preds):
            found = pred.pred_instances
            keep = found.scores >= self.score_thr
            sample.gt_instances = InstanceData(bboxes=found.bboxes[keep],
                                               labels=found.labels[keep])

    def __call__(self, distiller: nn.Module, batch: Batch) -> Dict[str, Tensor]:
        self.label(distiller.teacher, batch)
        return distiller.step(batch)
