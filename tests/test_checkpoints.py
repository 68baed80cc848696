"""The checkpoint cache: one training per spec, even when two callers ask at once."""

import threading
import time

import torch
from torch import nn

from kdlib import checkpoints


def test_concurrent_callers_train_once_and_share_the_weights():
    calls = []

    def build():
        return nn.Linear(3, 2)

    def fit(model, resume):
        calls.append(threading.get_ident())
        time.sleep(0.5)  # long enough for the other caller to reach the lock
        with torch.no_grad():
            model.weight.fill_(7.0)
        return {"history": [len(calls)]}

    got = []

    def worker():
        got.append(checkpoints.trained_model("toy", {"a": 1}, build, fit, torch.device("cpu")))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1  # the second caller waited on the lock, then loaded
    assert len(got) == 2 and all(torch.all(m.weight == 7.0) for m, _ in got)
    assert got[0][1] == got[1][1] == {"history": [1]}
    assert checkpoints.checkpoint_path("toy", {"a": 1}).is_file()


def test_a_model_trained_now_is_returned_as_a_later_call_loads_it():
    """Training may leave its own memory layout (channels-last under the bf16 engine); a
    caller gets the stored form either way, so a teacher trained in this process teaches
    exactly as a loaded one (bf16 results can depend on the layout)."""

    def build():
        torch.manual_seed(0)
        return nn.Conv2d(3, 4, 3)

    def fit(model, resume):
        model.to(memory_format=torch.channels_last)
        with torch.no_grad():
            model.weight.add_(1.0)
        return {"history": []}

    fresh, _ = checkpoints.trained_model("layout", {"a": 1}, build, fit, torch.device("cpu"))
    loaded, _ = checkpoints.trained_model("layout", {"a": 1}, build, fit, torch.device("cpu"))
    for a, b in zip(fresh.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b) and a.stride() == b.stride()
    assert fresh.weight.is_contiguous() and not fresh.training
