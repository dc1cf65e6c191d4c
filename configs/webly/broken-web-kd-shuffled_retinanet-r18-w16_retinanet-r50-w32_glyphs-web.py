# The webly suite's power check (mmkd_plugins/benchmark/power_check.py):
# web-kd with the teacher's class and box maps taken from another image of
# the batch. Same targets, statistics and loss scale, no correspondence to
# the image the student sees: this row must fall clearly below web-kd.
_base_ = ['./web-kd_retinanet-r18-w16_retinanet-r50-w32_glyphs-web.py']
custom_imports = dict(imports=['mmkd_plugins', 'mmkd_plugins.benchmark.power_check'],
                      allow_failed_imports=False)
_kd = _base_.model.distill_losses.loss_kd.loss
_box = _base_.model.distill_losses.loss_kd_box.loss
model = dict(
    distill_losses=dict(
        loss_kd=dict(loss=dict(_delete_=True, type='ShuffledTeacherLoss',
                               host=dict(_kd, num_classes=20))),
        loss_kd_box=dict(loss=dict(_delete_=True, type='ShuffledTeacherLoss', host=_box))))
