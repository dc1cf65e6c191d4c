# Plain dense KD on the whole web pool, the twin of KD^3: the student
# matches the teacher's class maps (per-class binary KL, weight 2 as the
# glyph `kd` row) and its box regression maps (MSE); nothing else trains the
# head on unlabelled images. Box weight 10: at weight 1 its gradient on the
# student was 1/75 of the class term's at initialisation (tools/loss_scale.py,
# 2 batches of the pool), too little to keep the box branch in step with the
# moving features; at 10 it is ~1/8.
_base_ = ['./_base_/web_glyphs.py']
model = dict(
    distill_losses=dict(
        loss_kd=dict(student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
                     loss=dict(type='DenseKDLoss', temperature=1.0, loss_weight=2.0)),
        loss_kd_box=dict(student='bbox_head.retina_reg', teacher='bbox_head.retina_reg',
                         loss=dict(type='FeatureMSELoss', loss_weight=10.0))))
