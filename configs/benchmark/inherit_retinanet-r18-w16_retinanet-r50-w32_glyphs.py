# The twin of every distillation row of the glyph benchmark: the student
# whose FPN output convs and head start from the teacher's, trained on its
# detection loss alone. A method row minus this row is what the method's
# loss adds; this row minus the student alone is what the initialisation adds.
_base_ = ['./_base_/distill_glyphs.py']
