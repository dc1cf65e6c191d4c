# Single-view logit distillation on the demo data: the baseline of cross-view
# (CRLD) distillation. Per-class binary KL between the teacher's and the
# student's sigmoid class maps (DenseKDLoss), one view, no confidence masks.
_base_ = ['../demo/retinanet_r18-w16_digits.py', '../_base_/distill/demo.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(
    _base_.kd_demo, _delete_=True, type='DetectionDistiller',
    distill_losses=dict(
        loss_kd=dict(
            student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
            # The within-view weight of the cross-view twin, so that the two
            # differ by the second view and the masks only.
            loss=dict(type='DenseKDLoss', temperature=1.0, loss_weight=2.0))))
custom_hooks = [dict(type='TeacherEvalHook')]
