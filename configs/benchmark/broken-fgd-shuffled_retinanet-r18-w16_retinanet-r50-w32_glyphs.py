# The benchmark's power check: the FGD row with the teacher's features taken
# from another image of the batch (mmkd_plugins/benchmark/power_check.py).
# Same features, statistics and loss scale as FGD, no correspondence to the
# image the student sees. If this row scores like FGD, the benchmark cannot
# tell transfer from regularisation.
_base_ = ['../fgd/fgd_retinanet-r18-w16_retinanet-r50-w32_glyphs.py']
custom_imports = dict(imports=['mmkd_plugins', 'mmkd_plugins.benchmark.power_check'],
                      allow_failed_imports=False)
_fgd = {{_base_.model.distill_losses.loss_fgd.loss}}
model = dict(
    distill_losses=dict(
        loss_fgd=dict(loss=dict(_delete_=True, type='ShuffledTeacherLoss', host=_fgd))))
