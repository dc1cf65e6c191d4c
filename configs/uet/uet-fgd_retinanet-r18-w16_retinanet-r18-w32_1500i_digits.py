# UET on the demo data: the FGD demo (its twin in ../fgd/) with the FGD loss
# wrapped by UncertaintyAwareLoss and Monte Carlo dropout on the teacher's
# backbone outputs (../_base_/distill/uet.py). At scale 0.5 the passes run on
# P3-P5 maps of 8x8, 4x4, 2x2 for 128x128 images: at full resolution the
# teacher's 128-wide FPN, repeated 8 times, costs +45 % over FGD on the CPU;
# at 0.5 about +13 % (docs/benchmarks.md).
_base_ = ['../fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py',
          '../_base_/distill/uet.py']
model = dict(distill_losses=dict(loss_fgd=dict(
    mc_dropout=_base_.kd_uet_mc_dropout,
    loss=dict(_base_.kd_uet, _delete_=True, type='UncertaintyAwareLoss',
              host=_base_.model.distill_losses.loss_fgd.loss))))
