"""The record migrations (scripts/migrate_specs.py) carry old specs to the ones today's plans
make, and no committed record keeps an old row name."""

import importlib.util

import pytest

from kdlib import chapters, paths, results
from kdlib.chapters import mnist, omitted_digit, vanilla_kd

spec = importlib.util.spec_from_file_location("migrate_specs",
                                              paths.REPO / "scripts" / "migrate_specs.py")
migrate_specs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(migrate_specs)

RECIPE = {"batch_size": 128, "crop_flip": False, "engine": "bf16", "epochs": 40, "gamma": 0.2,
          "jitter": 1, "lr": 0.1, "milestones": [0.3, 0.6, 0.8], "momentum": 0.9,
          "nesterov": True, "schedule": "cosine", "warmup_epochs": 0.0,
          "weight_decay": 0.0001}
DATA = {"dataset": "mnist", "subset_seed": 0, "train_size": 60000}
#: The paper profile's teacher of seed 1 as chapters 1 and 2 used to write it by hand.
OLD_TEACHER = {"model": "mlp-1200-1200", "dropout": 0.3, "input_dropout": 0.2, "data": DATA,
               "recipe": RECIPE, "seed": 1}


@pytest.fixture(scope="module")
def paper():
    return chapters.load_profile("paper")


def test_the_old_teacher_spec_becomes_the_one_today_trains(paper):
    assert migrate_specs.mnist_record(OLD_TEACHER) == mnist.teacher(paper["01_vanilla_kd"],
                                                                    1).spec()


def test_an_old_distilled_student_of_table_1_becomes_todays(paper):
    cfg = paper["01_vanilla_kd"]
    old = {"model": "mlp-400", "data": DATA, "seed": 1,
           "recipe": {**RECIPE, "jitter": 0, "weight_decay": 0.0},
           "kd": {"temperature": cfg.temperature, "alpha": cfg.alpha, "teacher": OLD_TEACHER}}
    from kdlib import objectives
    today = vanilla_kd.student(cfg, 1, objectives.HintonKD(cfg.temperature, cfg.alpha))
    assert migrate_specs.mnist_record(old) == today.spec()
    assert today.spec()["objective"]["teacher_logits"] == "computed once"


def test_an_old_student_of_table_2_becomes_todays_with_its_bias_shift(paper):
    from kdlib import digits

    cfg = paper["02_omitted_digit"]
    shift = {"chosen_on": "held-out training images", "criterion": "fraction",
             "target": "frequency in the training labels"}
    old = {"model": "mlp-400", "seed": 1, "bias_shift": shift,
           "data": {**DATA, "held_out_from": 50000, "omitted_digit": 2},
           "recipe": {**RECIPE, "jitter": 2, "weight_decay": 0.0},
           "kd": {"temperature": cfg.temperature, "alpha": cfg.alpha, "teacher": OLD_TEACHER,
                  "teacher_input": "each shifted batch"}}
    today = digits.record_spec(omitted_digit.student(cfg, 1, 2, True), digits.BiasShift())
    assert migrate_specs.mnist_record(old) == today


def test_row_names_swap_once_and_keep_the_reading():
    assert migrate_specs.record_name("tf_kd_reg") == "tf_kd_reg_ours"
    assert migrate_specs.record_name("tf_kd_reg_official@multiplier-100") == \
        "tf_kd_reg@multiplier-100"
    assert migrate_specs.record_name("at_tf_kd_reg_official@final-epoch") == \
        "at_tf_kd_reg@final-epoch"
    assert migrate_specs.record_name("akd@self-teacher-published") == "akd@self-teacher-published"
    nested = {"method": "at_tf_kd_reg_official", "evaluation": {"audit": {
        "transfer_from": {"method": "standard"}}}, "objective": {"loss": "tf_kd_reg_official"}}
    assert migrate_specs.renamed(nested) == {
        "method": "at_tf_kd_reg", "evaluation": {"audit": {"transfer_from": {
            "method": "standard"}}}, "objective": {"loss": "tf_kd_reg_official"}}  # a loss


def test_every_committed_record_names_a_row_of_today():
    rows = {m.name for c in chapters.all_chapters() for m in c.methods}
    rows |= {"teacher", "student", "student_kd"}  # chapters 1 and 2's trainings
    seen = 0
    for path in sorted((paths.REPO / "results").glob("*/*/*.json")):
        record = results.load_record(path)
        if record.chapter in ("01_vanilla_kd", "02_omitted_digit"):
            assert record.spec["method"] in rows, path
            continue
        row = record.name.partition("@")[0].removesuffix("_teacher")
        assert row in rows and record.spec["method"] in rows, path
        seen += 1
    assert seen > 300
