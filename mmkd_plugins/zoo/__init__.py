"""Publishing students the OpenMMLab way: the shipped configs and model index
(:mod:`.resources`), metafiles (:mod:`.metafile`, :mod:`.results`), the
zoo entry of an export (:mod:`.publish`), inference cost (:mod:`.cost`) and
model cards (:mod:`.card`)."""
from .resources import config_path, package_root, tool_path

__all__ = ['config_path', 'package_root', 'tool_path']
