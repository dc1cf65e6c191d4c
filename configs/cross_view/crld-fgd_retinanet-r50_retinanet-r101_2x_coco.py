# Cross-view distillation (CRLD) + FGD on COCO: the FGD twin
#   ../fgd/fgd_retinanet-r50_retinanet-r101_2x_coco.py
# trained on weak and strong views, with the cross-view logit terms added.
# Sigmoid class maps, temperature 1 (docs/cross_view.md). Drop
# distill_losses for cross-view alone.
_base_ = [
    '../fgd/fgd_retinanet-r50_retinanet-r101_2x_coco.py',
    './_base_/two_view_pipelines.py']
model = dict(type='CrossViewDistiller',
             cross_view=dict(loss=dict(_base_.cv_crld, type='CrossViewLoss')))
train_dataloader = dict(dataset=dict(pipeline={{_base_.cv_coco_train_pipeline}}))
