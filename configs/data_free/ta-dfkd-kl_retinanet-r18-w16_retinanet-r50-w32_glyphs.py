# TA-DFKD on the glyph benchmark with the class logits distilled by the
# per-class binary KL of the benchmark's logit-KD row (DenseKDLoss, T = 1,
# weight 2) instead of the paper's L1; the box regression keeps L1. The
# paper's loss weighs every logit alike, the many clear background ones
# included; the KL weighs them by the teacher's probabilities.
_base_ = ['./ta-dfkd_retinanet-r18-w16_retinanet-r50-w32_glyphs.py']
model = dict(
    distill_losses=dict(
        loss_cls=dict(loss=dict(_delete_=True, type='DenseKDLoss', temperature=1.0,
                                loss_weight=2.0))))
