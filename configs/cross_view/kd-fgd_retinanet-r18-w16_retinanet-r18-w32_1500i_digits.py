# Single-view logit distillation plus FGD on the demo data: the single-view
# twin of crld-fgd_..., so that the two differ by the second view and the
# confidence masks only. The FGD loss is the FGD demo's
# (../fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py, same values).
_base_ = ['./kd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py']
model = dict(
    distill_losses=dict(
        loss_fgd=dict(
            student='neck', teacher='neck',
            loss=dict(type='FGDLoss', temperature=0.5, alpha_fg=1e-3,
                      beta_bg=5e-4, gamma_mask=5e-4, lambda_rela=5e-6,
                      loss_weight=0.1))))
