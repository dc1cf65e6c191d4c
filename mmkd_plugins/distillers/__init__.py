"""The distiller and the parts methods are composed of (see ``parts.py``)."""
from .cross_view_distiller import (CrossViewDistiller, CrossViewTerm, TwoViews,
                                   project_rois, warp_dense)
from .data_free import DataFree, DataFreeDistiller, DataFreeOptimWrapperConstructor
from .detection_distiller import DetectionDistiller
from .disagreement_weights import DisagreementWeights
from .feature_term import FeatureTerm
from .generators import GaussianNoiseImages, ImageGenerator
from .lenient_filter import LenientFilter
from .group_dro_distiller import GroupDRO, GroupDROCrossViewDistiller, GroupDRODistiller
from .group_reweighted import GroupReweighted
from .mc_dropout import MCDropout
from .mix_distribution import MixDistribution, MixDistributionTerm
from .parts import Batch, DistillTerm, Features, Probe, SingleView, Step, WholeBatch
from .pseudo_boxes import TeacherPseudoBoxes
from .recorder import OutputRecorder

__all__ = [
    'DetectionDistiller', 'Batch', 'Features', 'Step', 'Probe', 'DistillTerm', 'SingleView',
    'WholeBatch', 'FeatureTerm', 'MCDropout', 'TwoViews', 'CrossViewTerm', 'GroupDRO',
    'GroupReweighted',
    'CrossViewDistiller', 'GroupDRODistiller', 'GroupDROCrossViewDistiller', 'warp_dense',
    'project_rois', 'DisagreementWeights', 'MixDistribution', 'MixDistributionTerm',
    'TeacherPseudoBoxes',
    'project_rois', 'DataFree', 'DataFreeDistiller', 'DataFreeOptimWrapperConstructor',
    'LenientFilter', 'ImageGenerator', 'GaussianNoiseImages',
    'OutputRecorder', 'is_distiller_type'
]


def is_distiller_type(model_type) -> bool:
    """Whether a config's ``model.type`` (a registry name or a class) is
    :class:`DetectionDistiller` or one of its registered aliases (e.g.
    ``GroupDRODistiller``)."""
    from mmdet.registry import MODELS
    cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    return isinstance(cls, type) and issubclass(cls, DetectionDistiller)
