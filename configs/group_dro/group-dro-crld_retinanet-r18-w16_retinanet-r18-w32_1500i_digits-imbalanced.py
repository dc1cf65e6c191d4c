# Group DRO over cross-view distillation on the group-imbalanced digits: the
# model of ../cross_view/crld_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py
# under the group-DRO objective (each group's loss is the cross-view
# distiller's whole loss on that group's images, both views split alike), the
# data of ./retinanet_r18-w16_1500i_digits-imbalanced.py seen as two views.
_base_ = ['./retinanet_r18-w16_1500i_digits-imbalanced.py',
          '../cross_view/_base_/two_view_pipelines.py']
model = dict(
    _delete_=True,
    type='GroupDROCrossViewDistiller',
    groups=['plain', 'gradient', 'texture', 'photo'],
    step_size=0.01,
    student='{{fileDirname}}/../demo/retinanet_r18-w16_digits.py',
    teacher='{{fileDirname}}/../demo/retinanet_r18-w32_digits.py',
    # The demo teacher, trained on the balanced demo data by `make demo`.
    teacher_ckpt='work_dirs/demo/teacher/iter_1500.pth',
    cross_view=dict(
        loss=dict(type='CrossViewLoss', within_weight=2.0, cross_weight=0.5,
                  temperature=1.0, tau_weak=0.9, tau_strong=0.2)),
    distill_losses=dict())
train_dataloader = dict(dataset=dict(pipeline={{_base_.cv_digits_train_pipeline}}))
custom_hooks = [dict(type='TeacherEvalHook')]
