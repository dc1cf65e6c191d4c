# UET on top of FGD: the FGD twin (../fgd/fgd_fcos-r50_fcos-r101_2x_coco.py) with its
# loss wrapped by UncertaintyAwareLoss and Monte Carlo dropout on the
# teacher's backbone outputs (8 passes of the teacher's FPN, batched).
# scale=0.5: the passes run at half resolution (P3 at 50x84 for 800x1333
# inputs), which keeps the 8 passes cheap; scale=1.0 is the full-resolution
# estimate (see README.md in this folder for the cost of both).
# See docs/uet.md.
_base_ = ['../fgd/fgd_fcos-r50_fcos-r101_2x_coco.py']
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
