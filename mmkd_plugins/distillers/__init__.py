from .detection_distiller import DetectionDistiller
from .recorder import OutputRecorder

__all__ = ['DetectionDistiller', 'OutputRecorder']
