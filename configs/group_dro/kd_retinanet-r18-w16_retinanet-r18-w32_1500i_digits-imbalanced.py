# Plain FGD distillation on the group-imbalanced digits: the model, losses and
# hooks of ../fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py
# (../_base_/distill/demo.py; tests/test_configs.py checks that they are
# identical), the data of ./retinanet_r18-w16_1500i_digits-imbalanced.py. The
# teacher is the demo's, trained on the *balanced* demo data by `make demo`.
_base_ = ['./retinanet_r18-w16_1500i_digits-imbalanced.py', '../_base_/distill/demo.py']
model = dict(
    _base_.kd_demo, _delete_=True, type='DetectionDistiller',
    distill_losses=dict(loss_fgd=dict(
        student='neck', teacher='neck', loss=dict(_base_.kd_demo_fgd_weights, type='FGDLoss'))))
custom_hooks = [dict(type='TeacherEvalHook')]
