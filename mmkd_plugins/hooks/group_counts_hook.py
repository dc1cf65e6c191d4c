"""Hand the training set's group sizes to a group objective."""
from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from ..datasets.group_coco import group_counts
from .utils import get_distiller


@HOOKS.register_module()
class GroupCountsHook(Hook):
    """Count the training dataset's images per group (``n_g``) before
    training and give them to the distiller's objective.

    Group DRO's adjustment ``C / sqrt(n_g)``
    (:class:`~mmkd_plugins.distillers.GroupDRO`) and inverse-frequency
    weights (:class:`~mmkd_plugins.distillers.GroupReweighted`) need
    ``n_g``; this hook takes it from the data the run trains on, so that it
    follows ``--cfg-options`` that change the data. When the objective's
    config gives ``group_counts`` too, the two must agree. The counts are
    not state: after ``--resume`` the hook counts again.
    """
    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        name = type(self).__name__
        objective = get_distiller(runner, name).objective
        if not hasattr(objective, 'set_group_counts'):
            raise TypeError(f'{name} needs a group objective (GroupDRO, GroupReweighted), but '
                            f'the distiller has {type(objective).__name__}')
        counts = group_counts(runner.train_dataloader.dataset, name)
        objective.set_group_counts(counts, source='the training dataset')
        runner.logger.info(f'{name}: training images per group {counts}')
