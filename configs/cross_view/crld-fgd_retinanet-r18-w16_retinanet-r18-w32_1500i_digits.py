# Cross-view distillation and FGD in one config: the FGD demo's feature loss
# (../fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py, same
# values) runs on both views beside the cross-view logit terms.
_base_ = ['./crld_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py']
model = dict(
    distill_losses=dict(
        loss_fgd=dict(
            student='neck', teacher='neck',
            loss=dict(type='FGDLoss', temperature=0.5, alpha_fg=1e-3,
                      beta_bg=5e-4, gamma_mask=5e-4, lambda_rela=5e-6,
                      loss_weight=0.1))))
