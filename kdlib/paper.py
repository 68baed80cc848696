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
