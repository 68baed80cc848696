"""Profiles: the shipped ones are valid, bad ones are refused before any compute."""

import dataclasses
import subprocess
import sys

import papermill
import pytest
import yaml

from kdlib import book, config, paths

PROFILES = ["smoke", "quick", "paper"]


@pytest.mark.parametrize("name", PROFILES)
def test_shipped_profiles_are_valid_and_match_the_notebooks(name):
    chapters = book.check_profile(name)
    assert set(chapters) == set(config.CHAPTERS)
    assert all(cfg.profile == name for cfg in chapters.values())


@pytest.mark.parametrize("chapter", sorted(config.CHAPTERS))
def test_notebook_defaults_are_the_smoke_profile(chapter):
    declared = papermill.inspect_notebook(str(book.notebook_path(chapter)))
    defaults = {k: eval(v["default"]) for k, v in declared.items()}  # literals only
    smoke = config.as_dict(config.load_profile("smoke")[chapter])
    dataclass_defaults = config.as_dict(config.CHAPTERS[chapter]())
    assert defaults == smoke == dataclass_defaults


def write_profile(tmp_path, name="custom", **changes):
    raw = yaml.safe_load((paths.profiles_dir() / "smoke.yaml").read_text())
    for chapter in raw["chapters"].values():
        chapter["profile"] = name
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
    cfg = config.load_profile(write_profile(tmp_path, seeds=[3, 4]))["01_vanilla_kd"]
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
        config.load_profile(write_profile(tmp_path, **changes))


def test_profile_name_must_match_file(tmp_path):
    path = write_profile(tmp_path)
    path.rename(tmp_path / "other.yaml")
    with pytest.raises(config.ProfileError, match="named 'other'"):
        config.load_profile(tmp_path / "other.yaml")


def test_unknown_profile_and_chapter():
    with pytest.raises(config.ProfileError, match="available"):
        config.load_profile("nonexistent")
    with pytest.raises(config.ProfileError, match="unknown chapter"):
        config.validate("99_nothing", {})


def test_notebook_parameters_are_validated_in_the_notebook():
    ns = config.as_dict(config.VanillaKD())
    ns["student_epochs"] = 0
    with pytest.raises(config.ProfileError, match="notebook parameters"):
        config.from_namespace("01_vanilla_kd", ns)


def test_cli_refuses_a_bad_profile_before_any_compute(tmp_path):
    path = write_profile(tmp_path, teacher_epochs=-1)
    done = subprocess.run([sys.executable, "-m", "kdlib", "book", str(path)],
                          capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 2
    assert "teacher_epochs: must be >= 1" in done.stderr
    assert not (paths.REPO / "_build" / "custom").exists()  # nothing staged, nothing run
