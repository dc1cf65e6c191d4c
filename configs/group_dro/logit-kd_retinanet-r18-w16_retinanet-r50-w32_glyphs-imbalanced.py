# Plain logit KD on the group-imbalanced glyph data: the benchmark's `kd`
# row (../baselines/kd_retinanet-r18-w16_retinanet-r50-w32_glyphs.py, dense
# per-class binary KL on the head's class maps, weight 2) on the data of
# ./retinanet_r18-w16_glyphs-imbalanced.py. A second plain KD for the group
# suite: it passes on the teacher's answers where FGD imitates its features,
# whose energy depends on the background (configs/group_dro/README.md).
_base_ = ['./_base_/distill_glyphs-imbalanced.py']
model = dict(
    distill_losses=dict(
        loss_kd=dict(student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
                     loss=dict(type='DenseKDLoss', temperature=1.0, loss_weight=2.0))))
