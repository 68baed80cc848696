"""The numbers the paper reports, in one place, as fractions (0.9898 = 98.98%).

Source: Zhuo, Zhang and Kuo, "Knowledge Distillation: Current Understanding
and Future Directions in an Adversarial Context" (Tables 1-5).
"""

TABLE1 = {
    "teacher_acc": 0.9898,
    "student_acc": 0.9806,
    "student_kd_acc": 0.9873,
    "teacher_flops": 2_392_800,
    "student_flops": 317_600,
    "teacher_layer_weights": (940_800, 1_440_000, 12_000),
    "student_layer_weights": (313_600, 4_000),
}

#: Omitted digit -> (no KD: others, only-digit; KD T=10: others, only-digit).
TABLE2 = {
    1: {"no_kd_others": 0.9803, "no_kd_digit": 0.00, "kd_others": 0.9825, "kd_digit": 0.9850},
    2: {"no_kd_others": 0.9812, "no_kd_digit": 0.00, "kd_others": 0.9851, "kd_digit": 0.9273},
}

#: Table 3 (CIFAR-10, 3 runs): (mean, std) of test accuracy. The std is taken to be the
#: sample standard deviation; the paper does not say which.
TABLE3 = {
    "teacher_baseline": (0.9529, 0.0099),  # ResNet50
    "student_baseline": (0.9490, 0.0010),  # ResNet18
    "re_kd": (0.9546, 0.0012),  # ResNet50 taught by ResNet18
}
TABLE3_RUNS = 3

#: Table 4 (CIFAR-10, ResNet18, 3 runs): (mean, std) of test accuracy.
TABLE4 = {
    "baseline": (0.9498, 0.0010),
    "tf_kd_reg": (0.9539, 0.0015),
    "tf_kd_self": (0.9542, 0.0042),
}
TABLE4_RUNS = 3

#: Table 5 (CIFAR-10, ResNet18, PGD-7 adversarial training): (clean, AutoAttack) accuracy.
TABLE5 = {
    "at_student": (0.8422, 0.4699),
    "student_at_teacher": (0.8270, 0.4766),
    "at_tf_kd_reg": (0.8202, 0.4828),
    "at_tf_kd_self": (0.8153, 0.4883),
}
