"""Profiles: the shipped ones are valid, bad ones are refused before any compute."""

import dataclasses
import subprocess
import sys

import papermill
import pytest
import yaml

from kdlib import chapters, config, paths
from kdlib.tooling import book

PROFILES = ["smoke", "quick", "paper"]


@pytest.mark.parametrize("name", PROFILES)
def test_shipped_profiles_are_valid_and_match_the_notebooks(name):
    cfgs = book.check_profile(name)
    assert set(cfgs) == set(chapters.REGISTRY)
    assert all(cfg.profile == name for cfg in cfgs.values())


@pytest.mark.parametrize("chapter", sorted(chapters.REGISTRY))
def test_notebook_defaults_are_the_smoke_profile(chapter):
    declared = papermill.inspect_notebook(str(book.notebook_path(chapter)))
    defaults = {k: eval(v["default"]) for k, v in declared.items()}  # literals only
    smoke = config.as_dict(chapters.load_profile("smoke")[chapter])
    dataclass_defaults = config.as_dict(chapters.params_class(chapter)())
    assert defaults == smoke == dataclass_defaults


def test_shared_blocks_are_merged_and_the_profile_name_comes_from_the_file():
    path, raw = config.read_profile("quick")
    assert path.stem == "quick"
    assert raw["05_gradients"] == raw["04_teacher_free"]  # one section, two chapters
    teacher_keys = ("dataset", "train_size", "batch_size", "teacher_epochs", "teacher_lr")
    assert all(raw["01_vanilla_kd"][k] == raw["02_omitted_digit"][k] for k in teacher_keys)
    assert "profile:" not in (paths.profiles_dir() / "quick.yaml").read_text()


def write_profile(tmp_path, name="custom", **changes):
    raw = yaml.safe_load((paths.profiles_dir() / "smoke.yaml").read_text())  # anchors merged
    del raw["shared"]
    params = raw["chapters"]["01_vanilla_kd"]
    for key, value in changes.items():
        if value is dataclasses.MISSING:
            del params[key]
        else:
            params[key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_valid_custom_profile_loads(tmp_path):
    cfg = chapters.load_profile(write_profile(tmp_path, seeds=[3, 4]))["01_vanilla_kd"]
    assert cfg.seeds == [3, 4] and cfg.profile == "custom"


@pytest.mark.parametrize("changes, message", [
    ({"teacher_epochs": -3}, "teacher_epochs: must be >= 1, got -3"),
    ({"dataset": "imagenet"}, "dataset: expected one of 'mnist', 'fashion-mnist'"),
    ({"learning_rate": 0.1}, "unknown key 'learning_rate'"),
    ({"alpha": dataclasses.MISSING}, "missing key 'alpha'"),
    ({"seeds": "0"}, "seeds: expected"),
    ({"seeds": []}, "seeds: must not be empty"),
    ({"alpha": 1.5}, "alpha: must be <= 1"),
    ({"temperature": 0}, "temperature: must be > 0"),
    ({"train_size": True}, "train_size: expected int"),
    ({"device": "tpu"}, "device: expected one of"),
])
def test_bad_profiles_are_refused_with_a_clear_message(tmp_path, changes, message):
    with pytest.raises(config.ProfileError, match=message.replace("(", r"\(")):
        chapters.load_profile(write_profile(tmp_path, **changes))


def test_the_profile_name_is_not_set_in_the_file(tmp_path):
    with pytest.raises(config.ProfileError, match="the file's name"):
        chapters.load_profile(write_profile(tmp_path, profile="other"))


def test_unknown_profile_and_chapter():
    with pytest.raises(config.ProfileError, match="available"):
        chapters.load_profile("nonexistent")
    with pytest.raises(config.ProfileError, match="unknown chapter"):
        chapters.validate("99_nothing", {})


def test_notebook_parameters_are_validated_in_the_notebook():
    ns = config.as_dict(chapters.params_class("01_vanilla_kd")())
    ns["student_epochs"] = 0
    with pytest.raises(config.ProfileError, match="notebook parameters"):
        chapters.parameters("01_vanilla_kd", ns)


def test_cli_refuses_a_bad_profile_before_any_compute(tmp_path):
    path = write_profile(tmp_path, teacher_epochs=-1)
    done = subprocess.run([sys.executable, "-m", "kdlib", "book", str(path)],
                          capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 2
    assert "teacher_epochs: must be >= 1" in done.stderr
    assert not (paths.REPO / "_build" / "custom").exists()  # nothing staged, nothing run
