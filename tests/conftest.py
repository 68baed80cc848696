"""Shared fixtures: scratch result and checkpoint folders for every test."""

import pytest
import torch


@pytest.fixture(autouse=True)
def scratch_dirs(tmp_path, monkeypatch):
    """Keep tests away from the real results/ and cache/ folders."""
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(tmp_path / "models"))
    return tmp_path


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run ~100x faster on one thread than on two busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
