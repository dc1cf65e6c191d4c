# Dense logit KD: per-class binary KL between the teacher's and the
# student's sigmoid class maps of the RetinaNet head, on every level.
_base_ = ['../benchmark/_base_/distill_glyphs.py']
model = dict(
    distill_losses=dict(
        loss_kd=dict(student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
                     loss=dict(type='DenseKDLoss', temperature=1.0, loss_weight=2.0))))
