"""Shared fixtures: scratch result and checkpoint folders for every test."""

import pytest


@pytest.fixture(autouse=True)
def scratch_dirs(tmp_path, monkeypatch):
    """Keep tests away from the real results/ and cache/ folders."""
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(tmp_path / "models"))
    return tmp_path
