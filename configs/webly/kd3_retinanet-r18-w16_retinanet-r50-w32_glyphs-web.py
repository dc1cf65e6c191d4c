# KD^3 (Tang et al., ICCV 2023) for a detector on the glyph web pool
# (docs/webly.md): web-kd's dense KD plus
# * head alignment: the student's neck ends in KD^3's projector and feeds the
#   teacher's head, copied and frozen (a plain MMDetection detector);
# * weighted feature alignment: MSE between the projected student FPN and
#   the teacher's, image i weighted by sigmoid(||z_S,i - z_T,i||) of the
#   image-level class logits of the two heads;
# * MixDistribution: the student embeds its images and a MixStyle-mixed copy,
#   NT-Xent at t=0.3; weight 0.05, not KD^3's 1e-3: at 1e-3 its gradient on
#   the student was 1/1000 of the dense KD term's at initialisation
#   (tools/loss_scale.py), i.e. no term at all; at 0.05 it is ~1/20;
# * dynamic selection: every epoch (375 iterations = one pass of 8-image
#   batches over the 3000-image pool) the teacher's and the student's
#   pseudo-boxes are combined and only the images above their class
#   threshold are drawn.
# The 1200-iteration schedule has 4 selection rounds (epochs 0-3): E_a=4 and
# E_stop=3 sample KD^3's a(e) curve at (e+1)/E_a = 1/4, 1/2, 3/4 (a = 0.94,
# 0.71, 0.27), then the student alone (a = 0), where KD^3's 160/120 of 240
# epochs would leave a ~1 for all four.
_base_ = ['./web-kd_retinanet-r18-w16_retinanet-r50-w32_glyphs-web.py']
model = dict(
    student='{{fileDirname}}/retinanet_r18-w16-proj_glyphs.py',
    init_student_from_teacher=[
        dict(student='neck.0.fpn_convs', teacher='neck.fpn_convs'),
        dict(student='bbox_head', frozen=True),
    ],
    distill_losses=dict(
        loss_fa=dict(student='neck', teacher='neck',
                     loss=dict(type='FeatureMSELoss', loss_weight=1.0),
                     image_weights=dict(type='DisagreementWeights',
                                        student='bbox_head.retina_cls'))),
    terms=[dict(type='MixDistributionTerm', module='neck', loss_weight=0.05)])
train_dataloader = dict(sampler=dict(type='WebSelectionSampler'))
custom_hooks = [dict(type='WebSelectionHook', ramp_epochs=4, stop_epoch=3, p_cutoff=0.95)]
