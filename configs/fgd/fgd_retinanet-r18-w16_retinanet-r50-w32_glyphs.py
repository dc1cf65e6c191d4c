# FGD on the glyph benchmark with FGD's published RetinaNet weights
# (Yang et al., CVPR 2022), on all three FPN levels; neck widths match, so
# no adapter.
_base_ = ['../benchmark/_base_/distill_glyphs.py']
model = dict(
    distill_losses=dict(
        loss_fgd=dict(
            student='neck', teacher='neck',
            loss=dict(type='FGDLoss', temperature=0.5, alpha_fg=1e-3, beta_bg=5e-4,
                      gamma_mask=5e-4, lambda_rela=5e-6))))
