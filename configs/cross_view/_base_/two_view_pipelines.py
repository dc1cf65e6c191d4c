# Two spatially aligned views of every training image, for CrossViewDistiller
# (CRLD). The shared part (load, resize, flip) runs once, so both views keep
# the same image size and the same boxes; MultiBranch then packs a weak view
# as is, and a strong view after two random photometric ops and cutout.
# CutOut (not RandomErasing) because it never drops boxes.
# Variable names start with cv_ so that this base merges with any other.
# homography_matrix: for cross_view.geometric=True; group: read by the group-DRO
# distillers (GroupCocoDataset sets it; PackDetInputs skips absent keys).
cv_meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                'flip_direction', 'homography_matrix', 'group')
# Photometric RandAugment space (the paper's list without the geometric ops
# Rotate, Shear, Translate: those need cross_view.geometric=True).
cv_color_space = [[dict(type='ColorTransform')], [dict(type='AutoContrast')],
                  [dict(type='Equalize')], [dict(type='Sharpness')],
                  [dict(type='Posterize')], [dict(type='Solarize')],
                  [dict(type='Contrast')], [dict(type='Brightness')]]
cv_weak = [dict(type='PackDetInputs', meta_keys=cv_meta_keys)]


def _strong(cutout_ratio):
    return [
        dict(type='RandAugment', aug_space=cv_color_space, aug_num=2),
        dict(type='CutOut', n_holes=(1, 3), cutout_ratio=cutout_ratio),
        dict(type='PackDetInputs', meta_keys=cv_meta_keys),
    ]


# Demo digits: no flip (a mirrored 2 is not a 2); holes of 5-10 % of the side.
cv_digits_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='MultiBranch', branch_field=['weak', 'strong'], weak=cv_weak,
         strong=_strong([(0.05, 0.05), (0.1, 0.1)])),
]
# COCO: the mmdet 2x schedules' weak view (resize + flip).
cv_coco_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='MultiBranch', branch_field=['weak', 'strong'], weak=cv_weak,
         strong=_strong([(0.05, 0.05), (0.1, 0.1)])),
]
del _strong
# CRLD's loss settings: the paper's weights and thresholds, temperature 1 for
# sigmoid dense heads (docs/cross_view.md). No `type`: top-level variables stay
# in the student config that tools/export_student.py writes. A config places it:
#   cross_view=dict(loss=dict(_base_.cv_crld, type='CrossViewLoss'))
cv_crld = dict(within_weight=2.0, cross_weight=0.5, temperature=1.0, tau_weak=0.9,
               tau_strong=0.2)
