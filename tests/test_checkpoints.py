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
