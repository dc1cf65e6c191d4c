from .cross_view_distiller import (CrossViewDistiller, TwoViewDataPreprocessor,
                                   warp_dense)
from .detection_distiller import DetectionDistiller
from .group_dro_distiller import GroupDROCrossViewDistiller, GroupDRODistiller
from .recorder import OutputRecorder

__all__ = [
    'CrossViewDistiller', 'TwoViewDataPreprocessor', 'warp_dense', 'DetectionDistiller',
    'GroupDRODistiller', 'GroupDROCrossViewDistiller', 'OutputRecorder', 'is_distiller_type'
]


def is_distiller_type(model_type) -> bool:
    """Whether a config's ``model.type`` (a registry name or a class) is
    :class:`DetectionDistiller` or a subclass (e.g. ``GroupDRODistiller``)."""
    from mmdet.registry import MODELS
    cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    return isinstance(cls, type) and issubclass(cls, DetectionDistiller)
