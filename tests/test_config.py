"""Profiles: the shipped ones are valid, bad ones are refused before any compute."""

import dataclasses
import subprocess
import sys

import nbformat
import papermill
import pytest
import yaml

from kdlib import chapters, config, paths
from kdlib.tooling import book

PROFILES = ["smoke", "quick", "paper"]


@pytest.mark.parametrize("name", PROFILES)
def test_shipped_profiles_are_valid_and_match_the_notebooks(name):
    cfgs = book.check_profile(name)
    assert set(cfgs) == set(chapters.names())
    assert all(cfg.profile == name for cfg in cfgs.values())


def parameters_cell(chapter):
    nb = nbformat.read(book.notebook_path(chapter), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{chapter}: one cell tagged 'parameters'"
    return cells[0].source


@pytest.mark.parametrize("chapter", chapters.names())
def test_notebook_parameters_are_the_dataclass_defaults(chapter):
    """Each parameter has one default, its dataclass's: the notebook's parameters cell is the
    one ``book.parameters_cell`` writes (``sync-notebooks``), papermill reads those same
    defaults from it, and the smoke profile (``defaults: true``, every section empty) takes
    them too."""
    assert parameters_cell(chapter) == book.parameters_cell(chapter)
    declared = papermill.inspect_notebook(str(book.notebook_path(chapter)))
    defaults = {k: eval(v["default"]) for k, v in declared.items()}  # literals only
    dataclass_defaults = config.as_dict(chapters.params_class(chapter)())
    assert defaults == dataclass_defaults
    smoke = config.as_dict(chapters.load_profile("smoke")[chapter])
    assert smoke == dataclass_defaults


def test_the_toc_lists_every_chapter_of_the_registry_in_book_order(tmp_path):
    assert chapters.names() == ["01_vanilla_kd", "02_omitted_digit", "03_reversed_kd",
                                "04_teacher_free", "05_gradients", "06_adversarial_tfkd"]
    assert [c.name for c in chapters.all_chapters()] == chapters.names()
    assert all(book.notebook_path(c).is_file() for c in chapters.names())
    book.write_toc(tmp_path)
    toc = yaml.safe_load((tmp_path / "_toc.yml").read_text())
    (part,) = [p for p in toc["parts"] if p.get("caption") == "Chapters"]
    assert part["chapters"] == [{"file": f"book/chapters/{c}"} for c in chapters.names()]
    source = yaml.safe_load((paths.REPO / "_toc.yml").read_text())
    assert [p for p in toc["parts"] if p.get("caption") != "Chapters"] == \
        [p for p in source["parts"] if p.get("caption") != "Chapters"]  # the rest untouched


def test_shared_blocks_are_merged_and_the_profile_name_comes_from_the_file():
    prof = config.read("quick")
    raw = prof.chapters
    assert prof.path.stem == "quick"
    assert not prof.committed and not prof.defaults and not prof.pilot
    assert all(params["profile"] == "quick" for params in raw.values())
    assert raw["05_gradients"] == raw["04_teacher_free"]  # one section, two chapters
    teacher_keys = ("dataset", "train_size", "batch_size", "teacher_epochs", "teacher_lr")
    assert all(raw["01_vanilla_kd"][k] == raw["02_omitted_digit"][k] for k in teacher_keys)
    assert "profile:" not in (paths.profiles_dir() / "quick.yaml").read_text()


def test_the_smoke_profile_is_all_defaults():
    prof = config.read("smoke")
    assert prof.defaults and not prof.committed
    assert set(prof.chapters) == set(chapters.names())
    assert all(params == {"profile": "smoke"} for params in prof.chapters.values())


def test_committed_and_pilot_are_top_level_flags(tmp_path):
    assert config.read("paper").committed and config.is_committed("paper")
    assert config.read("cpu").committed and not config.read("cpu").pilot
    assert config.read("pilot-e8").pilot and config.read("pilot-e8").committed
    assert not config.is_committed("quick") and not config.is_committed("smoke")
    scratch = write_profile(tmp_path, "paper")  # not a file of profiles/: never committed
    assert not config.read(scratch).committed and not config.is_committed("nonexistent")
    text = scratch.read_text()
    scratch.write_text("committed: true\n" + text)
    assert config.read(scratch).committed
    scratch.write_text("committed: yes please\n" + text)
    with pytest.raises(config.ProfileError, match="true or false"):
        config.read(scratch)
    scratch.write_text("commited: true\n" + text)
    with pytest.raises(config.ProfileError, match="expected top-level keys"):
        config.read(scratch)


def write_profile(tmp_path, name="custom", *, defaults=False, **changes):
    """A profile that writes out every parameter of every chapter at its default, with
    `changes` to chapter 1's (``dataclasses.MISSING`` leaves a key out)."""
    raw = {"description": "a test profile",
           "chapters": {c: {k: v for k, v in config.as_dict(chapters.params_class(c)()).items()
                            if k != "profile"} for c in chapters.names()}}
    if defaults:
        raw["defaults"] = True
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


def test_with_defaults_a_section_may_leave_parameters_out(tmp_path):
    default = chapters.params_class("01_vanilla_kd")().alpha
    cfg = chapters.load_profile(write_profile(tmp_path, defaults=True, alpha=dataclasses.MISSING,
                                              seeds=[3]))["01_vanilla_kd"]
    assert cfg.alpha == default and cfg.seeds == [3]
    with pytest.raises(config.ProfileError, match="alpha: must be <= 1"):  # still validated
        chapters.load_profile(write_profile(tmp_path, defaults=True, alpha=1.5))


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


def test_a_profile_of_some_chapters_is_checked_and_run_but_is_not_a_book(capsys):
    """A disclosed profile that declares one chapter (``cpu-amd-fit``) is valid for ``check``
    and ``run``; a book of it, or a chapter it lacks, is refused before any compute, naming
    what it declares and the command that makes its records."""
    from kdlib.tooling import cli

    assert set(book.check_profile("cpu-amd-fit", whole_book=False)) == {"04_teacher_free"}
    assert cli.main(["check", "cpu-amd-fit"]) == 0
    assert "04_teacher_free (not a whole book)" in capsys.readouterr().out
    assert cli.main(["run", "cpu-amd-fit", "03_reversed_kd", "--compute-only"]) == 2
    assert "declares ['04_teacher_free']" in capsys.readouterr().err
    with pytest.raises(config.ProfileError, match="a book needs every chapter .* "
                                                  "`python -m kdlib jobs cpu-amd-fit`"):
        book.check_profile("cpu-amd-fit")


def test_a_reader_that_leaves_early_gets_no_traceback():
    """``kdlib jobs cpu --dry-run | head``: the output's reader leaves before it ends; the
    command stops quietly with a shell's SIGPIPE status, not a traceback."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "kdlib", "check", "smoke"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr
