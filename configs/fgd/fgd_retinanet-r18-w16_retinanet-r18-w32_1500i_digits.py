# FGD on the demo data: the R18-w16 student learns from the R18-w32 teacher's
# FPN; the pair and the demo's FGD weights are ../_base_/distill/demo.py.
_base_ = ['../demo/retinanet_r18-w16_digits.py', '../_base_/distill/demo.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(
    _base_.kd_demo, _delete_=True, type='DetectionDistiller',
    distill_losses=dict(loss_fgd=dict(
        student='neck', teacher='neck', loss=dict(_base_.kd_demo_fgd_weights, type='FGDLoss'))))
custom_hooks = [dict(type='TeacherEvalHook')]
