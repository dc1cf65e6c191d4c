from .distill_loss_weight_hook import DistillLossWeightHook, loss_weight_factor
from .distill_stop_hook import DistillStopHook
from .generated_images_hook import GeneratedImagesHook
from .group_counts_hook import GroupCountsHook
from .teacher_eval_hook import TeacherEvalHook
from .uncertainty_vis_hook import UncertaintyVisHook
from .web_selection_hook import WebSelectionHook

__all__ = ['DistillLossWeightHook', 'DistillStopHook', 'GeneratedImagesHook', 'GroupCountsHook',
           'TeacherEvalHook', 'UncertaintyVisHook', 'WebSelectionHook', 'loss_weight_factor']
