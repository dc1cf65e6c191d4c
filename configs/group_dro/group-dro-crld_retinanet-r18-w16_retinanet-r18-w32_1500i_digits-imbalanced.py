# Group DRO over cross-view distillation on the group-imbalanced digits: the
# model of ../cross_view/crld_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py
# under the group-DRO objective (each group's loss is the cross-view
# distiller's whole loss on that group's images, both views split alike), the
# data of ./retinanet_r18-w16_1500i_digits-imbalanced.py seen as two views.
_base_ = ['./retinanet_r18-w16_1500i_digits-imbalanced.py',
          '../cross_view/_base_/two_view_pipelines.py', '../_base_/distill/demo.py']
model = dict(_base_.kd_demo, _delete_=True, type='GroupDROCrossViewDistiller',
             groups=['plain', 'gradient', 'texture', 'photo'], step_size=0.01,
             cross_view=dict(loss=dict(_base_.cv_crld, type='CrossViewLoss')),
             distill_losses=dict())
train_dataloader = dict(dataset=dict(pipeline={{_base_.cv_digits_train_pipeline}}))
custom_hooks = [dict(type='TeacherEvalHook')]
