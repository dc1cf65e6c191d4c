# FGD between the FPN levels of student and teacher (Yang et al., CVPR 2022):
# the weights of the published RetinaNet configs, which FGD's GFL configs reuse
# and the other configs scale. Variable names start with kd_ so that this base
# merges with any other; a config places them, e.g.
#   loss=dict(_base_.kd_fgd_weights, type='FGDLoss')
# No `type` here on purpose: top-level variables stay in every config built on
# this base, including the student config that tools/export_student.py writes,
# which must not name an mmkd_plugins type.
kd_fgd_weights = dict(temperature=0.5, alpha_fg=1e-3, beta_bg=5e-4, gamma_mask=5e-4,
                      lambda_rela=5e-6)
