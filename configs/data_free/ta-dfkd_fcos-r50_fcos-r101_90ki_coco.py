# TA-DFKD for detectors, FCOS R101-caffe (multi-scale 2x) -> R50-caffe with
# the center-normbbox-centeronreg-giou tricks, COCO, data-free; everything
# but the model as the RetinaNet config. The two heads parametrise boxes
# differently (norm_on_bbox), so only the class and centerness logits are
# distilled by L1; the boxes follow the neck through FGD (FGD's FCOS
# weights). Caffe-style models read BGR: the generator makes BGR images.
# No head is copied (the layouts differ), as in FGD's FCOS config. Not
# trained here.
_base_ = ['./ta-dfkd_retinanet-r50_retinanet-r101_90ki_coco.py']
model = dict(
    student='mmdet::fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py',
    teacher='mmdet::fcos/fcos_r101-caffe_fpn_gn-head_ms-640-800-2x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/fcos/'
    'fcos_r101_caffe_fpn_gn-head_mstrain_640-800_2x_coco/'
    'fcos_r101_caffe_fpn_gn-head_mstrain_640-800_2x_coco-511424d6.pth',
    init_student_from_teacher=(),
    distill_losses=dict(
        _delete_=True,  # no box-regression entry (see above)
        loss_cls=dict(student='bbox_head.conv_cls', teacher='bbox_head.conv_cls',
                      loss=dict(type='DenseL1Loss')),
        loss_ctr=dict(student='bbox_head.conv_centerness', teacher='bbox_head.conv_centerness',
                      loss=dict(type='DenseL1Loss')),
        loss_fgd=dict(student='neck', teacher='neck',
                      loss=dict(_base_.kd_fgd_weights, type='FGDLoss', temperature=0.8,
                                alpha_fg=1.6e-3, beta_bg=8e-4, gamma_mask=8e-4,
                                lambda_rela=8e-6))))
