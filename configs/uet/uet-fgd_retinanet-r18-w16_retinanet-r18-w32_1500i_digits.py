# UET on the demo data: the FGD demo (its twin in ../fgd/) with the FGD loss
# wrapped by UncertaintyAwareLoss and Monte Carlo dropout on the teacher's
# backbone outputs (8 passes of the teacher's neck, batched). See docs/uet.md.
# scale=0.5: the passes run at half resolution (P3-P5 maps 8x8, 4x4, 2x2 for
# 128x128 images). At full resolution the teacher's 128-wide FPN, repeated 8
# times, costs +45 % over FGD on the CPU; at 0.5 about +13 % (docs/benchmarks.md).
_base_ = ['../fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py']
model = dict(
    distill_losses=dict(
        loss_fgd=dict(
            mc_dropout=dict(p=0.1, passes=8, placement='backbone', reduce='spatial',
                            scale=0.5),
            loss=dict(
                _delete_=True,
                type='UncertaintyAwareLoss', mode='weight', strength=1.0,
                # The FGD twin's loss, unchanged.
                host={{_base_.model.distill_losses.loss_fgd.loss}}))))
