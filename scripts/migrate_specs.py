"""One-off migrations of committed records to the typed specs of kdlib.networks.

Issue 18 carried the image chapters (3, 4 and 6); issue 27 carried the MNIST chapters (1
and 2), whose hand-written specs named their networks by string (``mlp-400``), kept the
teacher's dropout beside the model, the distillation under ``kd`` and the bias shift's
criterion as prose keys; see :func:`mnist_training`.

The image chapters (3, 4 and 6) used to write their specs by hand, with keys nothing read
(``reduction``, ``teacher_input``, the threat's ``norm``, ``random_start`` and
``attack_loss``, the evaluation's ``queries`` and ``of``) and chapter-specific layouts.
Their records are carried to the new specs by :func:`migrate`, written independently of
the code that now builds specs; every migrated spec must be one that today's plan makes
(found by its hash), or the script stops and writes nothing. A
migrated record keeps its metrics, wall time and provenance (the commit whose code
computed it) and gains ``migrated_from``: the old spec hash and the commit that migrated
it. ``python -m kdlib verify PROFILE`` then re-runs a sample with today's code and checks
that every metric is identical.

Each migration is a step, run once on the profiles that hold such records:

    python scripts/migrate_specs.py STEP PROFILE [PROFILE ...] [--dry-run]

``typed-images`` (issue 18), ``typed-mnist`` and ``row-names`` (issue 27: the rows named as
the paper names them, :data:`ROWS`). A step run again on records it has already carried
finds specs that no plan makes and stops without writing.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

from kdlib import chapters, paths, results

IMAGE_CHAPTERS = ("03_reversed_kd", "04_teacher_free", "06_adversarial_tfkd")
MNIST_CHAPTERS = ("01_vanilla_kd", "02_omitted_digit")
#: The MNIST chapters' networks by their old names, and their test images (the whole split).
MLP_SIZES = {"mlp-1200-1200": [784, 1200, 1200, 10], "mlp-400": [784, 400, 10]}
MNIST_TEST = 10_000


def _objective(old: dict[str, Any]) -> dict[str, Any]:
    new = {k: v for k, v in old.items() if k not in ("reduction", "teacher_input", "teacher",
                                                     "threat", "inputs")}
    if new["loss"] == "tf_kd_reg":
        new.setdefault("log_space", False)
    new["inputs"] = old.get("inputs", "clean images")
    if "threat" in old:
        t = old["threat"]
        assert t["norm"] == "Linf" and t["random_start"] and t["attack_loss"] == "cross_entropy"
        new["threat"] = {"eps": t["eps"], "step": t["pgd_step"], "steps": t["pgd_steps"],
                         "mode": t["mode"], "ramp_epochs": t.get("ramp_epochs", 0)}
    if "teacher" in old:
        new["teacher"] = training(old["teacher"], batch=None)
    return new


def training(old: dict[str, Any], batch: int | None) -> dict[str, Any]:
    """A training spec (a run's, or a teacher's); `batch`: the evaluation batch, which early
    stopping used for its held-out attack."""
    new = {k: old[k] for k in ("method", "model", "data", "recipe", "seed")}
    new["objective"] = _objective(old["objective"])
    if "gradients" in old:
        new["gradients"] = old["gradients"]
    if old.get("held_out"):
        new["held_out"] = old["held_out"]
    if old.get("early_stop"):
        assert old["early_stop"]["held_out"] == old["held_out"]
        if batch is None:  # a teacher: its early stopping ran with the same evaluation batch
            batch = TEACHER_BATCH[0]
        new["early_stop"] = {"batch": batch}
    return new


TEACHER_BATCH: list[int] = [0]


def evaluation(old: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    aa, pgd = old["autoattack"], old["pgd"]
    assert aa["norm"] == "Linf" and pgd["random_start"] and aa["eps"] == pgd["eps"]
    assert old["square_only"]["queries"] == 5000  # pyautoattack's Square budget
    new = {"precision": old["precision"], "batch": aa["chunk"],
           "pgd": {"eps": pgd["eps"], "step": pgd["step"], "steps": pgd["steps"],
                   "mode": "eval", "ramp_epochs": 0, "seed": pgd["seed"]},
           "autoattack": {"version": aa["version"], "attacks": aa["attacks"],
                          "images": aa["images"], "seed": aa["seed"]},
           "square_only": {"images": old["square_only"]["images"]}}
    if run["objective"]["inputs"] == "PGD examples":  # the audited rows
        au = old["audit"]
        assert au["transfer_from"] == "standard"
        reference = {k: run[k] for k in ("model", "data", "recipe", "seed")}
        reference.update(method="standard",
                         objective={"loss": "cross_entropy", "inputs": "clean images"})
        if run.get("held_out"):
            reference["held_out"] = run["held_out"]
        new["audit"] = {"images": au["images"], "steps": au["steps"],
                        "restarts": au["restarts"], "sweep": au["sweep"],
                        "transfer_from": reference}
    return new


def mnist_training(old: dict[str, Any]) -> dict[str, Any]:
    """The typed spec of an MNIST chapter's network: the teacher (whose old spec has its
    dropout beside the model), or a student trained from the labels or distilled (``kd``)."""
    model: dict[str, Any] = {"arch": "mlp", "sizes": MLP_SIZES[old["model"]]}
    for key in ("dropout", "input_dropout"):
        if old.get(key):
            model[key] = old[key]
    data = {**old["data"], "test_size": MNIST_TEST}
    objective: dict[str, Any] = {"loss": "cross_entropy", "inputs": "clean images"}
    kd = old.get("kd")
    if kd is not None:
        once = kd.get("teacher_input", "the transfer set, once") == "the transfer set, once"
        assert once == (old["recipe"]["jitter"] == 0)
        objective = {"loss": "hinton_kd", "temperature": kd["temperature"],
                     "alpha": kd["alpha"], "inputs": "clean images",
                     "teacher": mnist_training(kd["teacher"])}
        if once:
            objective["teacher_logits"] = "computed once"
    method = "teacher" if old["model"] == "mlp-1200-1200" else (
        "student_kd" if kd is not None else "student")
    return {"method": method, "model": model, "data": data, "recipe": old["recipe"],
            "seed": old["seed"], "objective": objective}


def mnist_record(old: dict[str, Any]) -> dict[str, Any]:
    """A record's spec: a student of Table 2 also names its bias shift."""
    new = mnist_training(old)
    if "bias_shift" in old:
        shift = old["bias_shift"]
        assert shift["chosen_on"] == "held-out training images"
        assert shift["target"] == "frequency in the training labels"
        new["evaluation"] = {"bias_shift": {"criterion": shift["criterion"],
                                            "chosen_on": "held-out images",
                                            "target": "frequency in the training labels"}}
    return new


#: Rows renamed so that the paper's Tf-KD-reg row carries its name (issue 27): the official
#: form is ``tf_kd_reg``, this build's own form ``tf_kd_reg_ours``; likewise under AT.
ROWS = {"tf_kd_reg": "tf_kd_reg_ours", "tf_kd_reg_official": "tf_kd_reg",
        "at_tf_kd_reg": "at_tf_kd_reg_ours", "at_tf_kd_reg_official": "at_tf_kd_reg"}


def renamed(value: Any) -> Any:
    """`value` (a spec, or a part of one) with every ``method`` renamed by :data:`ROWS`."""
    if isinstance(value, dict):
        return {k: (ROWS.get(v, v) if k == "method" else renamed(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v) for v in value]
    return value


def record_name(name: str) -> str:
    """A record's name with its row renamed (``row@reading`` keeps its reading)."""
    row, at, reading = name.partition("@")
    return ROWS.get(row, row) + at + reading


def migrate(chapter: str, spec: dict[str, Any], step: str = "typed-images") -> dict[str, Any]:
    """The new spec of a record of `chapter` whose spec is `spec`, under migration `step`."""
    if step == "row-names":
        return renamed(spec)
    if step == "typed-mnist":
        return mnist_record(spec) if chapter in MNIST_CHAPTERS else copy.deepcopy(spec)
    if chapter not in IMAGE_CHAPTERS:
        return copy.deepcopy(spec)
    if "evaluation" not in spec:
        return training(spec, batch=None)
    batch = spec["evaluation"]["autoattack"]["chunk"]
    TEACHER_BATCH[0] = batch
    run = training(spec, batch)
    return {**run, "evaluation": evaluation(spec["evaluation"], run)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["typed-images", "typed-mnist", "row-names"])
    parser.add_argument("profiles", nargs="+")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    commit = results.environment()["git_commit"]
    moves: list[tuple[Path, Path, dict[str, Any]]] = []
    for profile in args.profiles:
        cfgs = chapters.load_profile(profile)
        for chapter, cfg in cfgs.items():
            if chapters.get(chapter).records_of:
                continue
            planned = {r.spec_hash: r for r in chapters.plan(chapter, cfg)}
            for path in sorted((paths.results_dir() / profile / chapter).glob("*.json")):
                record = results.load_record(path)
                new = migrate(chapter, record.spec, args.step)
                name = record_name(record.name) if args.step == "row-names" else record.name
                run = planned.get(results.spec_hash(new))
                if run is None or run.name != name:
                    print(f"{path}: the migrated spec is not what today's plan makes",
                          file=sys.stderr)
                    return 1
                if run.path == path:
                    continue
                # the hash the record's own code made, which a verification re-makes
                made = (record.migrated_from or {}).get("spec_hash", record.spec_hash)
                out = {**record.json(), "name": name, "spec": new, "spec_hash": run.spec_hash,
                       "migrated_from": {"spec_hash": made, "commit": commit}}
                moves.append((path, run.path, out))
    for old, new, record in moves:
        print(f"{old.relative_to(paths.results_dir())} -> {new.name}")
        if not args.dry_run:
            results.write_record(new, record)
            old.unlink()
    print(f"{len(moves)} records migrated" + (" (dry run)" if args.dry_run else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
