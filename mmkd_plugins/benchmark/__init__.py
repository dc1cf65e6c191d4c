"""The accuracy benchmark: a miniature of the COCO distillation recipe on
the glyph data (backbone pretraining, teacher, paired method rows), split
into suites and rows (:mod:`.suites`), running and caching jobs
(:mod:`.runs`), the paired-difference tables (:mod:`.tables`) and the
pictures (:mod:`.plots`). ``tools/benchmark_accuracy.py`` is its command."""
