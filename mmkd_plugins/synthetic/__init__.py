"""Synthetic detection data made offline from what ships inside registry
packages: the demo digits (:mod:`.digits`) and the benchmark's glyph scenes
with their pretraining crops (:mod:`.glyphs`). Nothing here imports torch."""
