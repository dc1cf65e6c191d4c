# Cross-view distillation with FGD + UET: the FGD loss of the cross-view + FGD
# config wrapped by UncertaintyAwareLoss, exactly as ../uet/ wraps the FGD demo.
_base_ = ['./crld-fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py']
model = dict(
    distill_losses=dict(
        loss_fgd=dict(
            mc_dropout=dict(p=0.1, passes=8, placement='backbone', reduce='spatial',
                            scale=0.5),
            loss=dict(
                _delete_=True,
                type='UncertaintyAwareLoss', mode='weight', strength=1.0,
                host={{_base_.model.distill_losses.loss_fgd.loss}}))))
