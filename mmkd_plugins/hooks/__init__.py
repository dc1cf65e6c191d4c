from .distill_loss_weight_hook import DistillLossWeightHook, loss_weight_factor
from .distill_stop_hook import DistillStopHook
from .generated_images_hook import GeneratedImagesHook
from .teacher_eval_hook import TeacherEvalHook
from .uncertainty_vis_hook import UncertaintyVisHook

__all__ = ['DistillLossWeightHook', 'DistillStopHook', 'GeneratedImagesHook', 'TeacherEvalHook',
           'UncertaintyVisHook', 'loss_weight_factor']
