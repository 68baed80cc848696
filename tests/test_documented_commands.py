"""Every command the README and the book's pages show for a CPU is tested, with tiny settings.

The commands are read from the ```bash blocks of README.md and book/*.md. A `kdlib`
command runs for real where it is cheap (with the `smoke` profile in scratch folders
instead of the one shown) and otherwise has every flag it uses checked against its
``--help``; `make` targets must exist (``make -n``); benchmark and papermill commands have
their flags checked. A renamed module, command or flag therefore fails this test.
"""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from kdlib import paths

PYTHON = Path(sys.executable)
DOCS = [paths.REPO / "README.md", *sorted((paths.REPO / "book").glob("*.md"))]
#: Profiles a documented command names, run here as the seconds-long `smoke` instead.
HEAVY = {"quick", "paper", "cpu"}
#: kdlib sub-commands cheap enough to run for real with the smoke profile.
CHEAP = {"check", "costs", "params", "data"}


def documented() -> list[tuple[str, str]]:
    """``(where, command)`` for every command line of a ```bash block in the docs."""
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for block in re.findall(r"```bash\n(.*?)```", text, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                command = line.split(" #")[0].strip()
                if command and not command.startswith("#"):
                    out.append((doc.name, command))
    return out


COMMANDS = documented()


def test_the_docs_show_the_commands_a_newcomer_needs():
    shown = " ".join(c for _, c in COMMANDS)
    for needed in ("make book", "make test", "kdlib check", "kdlib run", "kdlib jobs",
                   "kdlib verify", "kdlib costs", "benchmarks.run"):
        assert needed in shown, needed


def run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, cwd=paths.REPO, timeout=600,
                          **kw)


@functools.cache
def help_text(module: str, sub: str | None = None) -> str:
    args = [str(PYTHON), "-m", module] + ([sub] if sub else []) + ["--help"]
    done = run(args)
    assert done.returncode == 0, (args, done.stderr[-2000:])
    return done.stdout


def flags(words: list[str]) -> list[str]:
    return [w.split("=")[0] for w in words if w.startswith("--")]


def check_kdlib(words: list[str], scratch: Path) -> None:
    sub = words[0]
    text = help_text("kdlib", sub)
    for flag in flags(words):
        assert flag in text, f"kdlib {sub} has no flag {flag}"
    if sub in CHEAP:
        args = []
        for w in words:
            if w in HEAVY:
                w = "smoke"
            elif w.endswith(".yaml") and not (paths.REPO / w).is_file():  # a custom profile
                w = str(scratch / w)
                Path(w).write_text((paths.profiles_dir() / "smoke.yaml").read_text())
            args.append(w)
        done = run([str(PYTHON), "-m", "kdlib", *args])
        assert done.returncode == 0, (args, done.stderr[-2000:])


@pytest.mark.parametrize(("where", "command"), COMMANDS,
                         ids=[f"{w}: {c[:60]}" for w, c in COMMANDS])
def test_a_documented_command_works(where, command, tmp_path):
    words = shlex.split(command.replace('"$(nvidia-smi -L | wc -l)"', "1"))
    if words[0] in ("git", "cd"):
        return  # not the project's
    if words[0] == "make":
        targets = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
        done = run(["make", "-n", *(targets or ["book"])])
        assert done.returncode == 0, (command, done.stderr[-1000:])
        return
    if words[0] == "bash":
        assert (paths.REPO / words[1]).is_file(), command
        return
    if words[0] == "papermill":
        text = run([str(PYTHON.with_name("papermill")), "--help"]).stdout
        assert all(f in text for f in flags(words) + ["-f", "-y", "-p"]), command
        assert (paths.REPO / words[1]).is_file(), command
        return
    assert words[0].endswith("python") and words[1] == "-m", command
    module = words[2]
    if module == "kdlib":
        check_kdlib(words[3:], tmp_path)
    else:
        text = help_text(module)
        for flag in flags(words[3:]):
            assert flag in text, f"{module} has no flag {flag}"


def test_the_installed_kdlib_command_works():
    exe = PYTHON.with_name("kdlib")
    done = run([str(exe), "--help"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "verify" in done.stdout and "jobs" in done.stdout
    done = run([str(exe), "check", "smoke"])
    assert done.returncode == 0 and "is valid" in done.stdout, done.stderr[-2000:]
