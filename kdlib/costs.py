"""What a profile costs: training FLOPs per chapter and estimated H100 hours.

Conventions (the same as ``benchmarks/run.py``):

- a forward pass costs 2 FLOPs per multiply-accumulate of
  :func:`kdlib.models.count_cost` (biases ignored);
- a training step costs 3 forward passes per image (backward ≈ 2 forwards);
- a frozen teacher run on the student's batch adds 1 forward pass per image;
  teacher logits precomputed once (the MNIST students) add 1 forward pass over
  the training set;
- PGD-k adversarial training costs k + 1 clean steps (each attack step is a
  forward pass and a backward pass to the input): 8 for PGD-7;
- test-set evaluation is left out (under 1% of a run), except AutoAttack.

Hours divide the FLOPs by an *assumed* achieved rate on one H100: ResNet18
CIFAR training in bf16 at :data:`H100_IMAGES_PER_S` images/s (the speed target
of the issue that asked for the benchmark, not a measurement), applied to
every row. Small MLPs reach far less of an H100 (kernel launches dominate),
but their rows take minutes either way.

Chapters 3 and 4, when a profile has no section for them, are estimated with
the paper's settings (:data:`PAPER_CIFAR`), and marked so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from kdlib import config, mnist_kd, models, omitted_digit, paper

#: Assumed H100 throughput: ResNet18 CIFAR training images per second, bf16.
H100_IMAGES_PER_S = 20_000

#: The CIFAR chapters' settings in the paper (DESIGN.md §4), used when a profile lacks them.
PAPER_CIFAR: dict[str, Any] = {"profile": "paper", "seeds": [0, 1, 2], "dataset": "cifar10",
                               "train_size": 50_000, "test_size": 10_000, "width": 64,
                               "augment": "crop_flip", "batch_size": 128, "epochs": 200}

@dataclass(frozen=True)
class Row:
    """One kind of run of a chapter and its compute."""

    chapter: str
    what: str
    runs: int
    flops_per_run: float
    note: str = ""
    family: str = "resnet"  # "mlp" or "resnet": which measured rate applies

    @property
    def flops(self) -> float:
        return self.runs * self.flops_per_run


def achieved_flops(images_per_s: float = H100_IMAGES_PER_S) -> float:
    """FLOP/s that ResNet18 CIFAR training at `images_per_s` amounts to."""
    return images_per_s * 6 * resnet_macs("resnet18", 64, 3, 32)


@cache
def resnet_macs(arch: str, width: int, channels: int, side: int) -> int:
    build = {"resnet18": models.resnet18, "resnet50": models.resnet50}[arch]
    return models.count_cost(build(width=width, in_channels=channels), (channels, side, side)).macs


@cache
def mlp_macs(which: str) -> int:
    build = {"teacher": models.teacher_mlp, "student": models.student_mlp}[which]
    return models.count_cost(build(), (1, 28, 28)).macs


# --- the chapters --------------------------------------------------------------------------------

def vanilla_rows(cfg: config.VanillaKD) -> list[Row]:
    """Table 1: teachers, both students per seed, and the sweep's KD students (one seed)."""
    t, s, n, ch = mlp_macs("teacher"), mlp_macs("student"), cfg.train_size, "01_vanilla_kd"
    student = 6 * s * n * cfg.student_epochs
    logits = 2 * t * n  # the teacher's logits, computed once per KD student
    sweep = len(cfg.sweep_temperatures) * len(cfg.sweep_alphas)
    return [Row(ch, "teacher MLP 784-1200-1200-10", len(cfg.seeds),
                6 * t * n * cfg.teacher_epochs, family="mlp"),
            Row(ch, "student MLP 784-400-10, no KD", len(cfg.seeds), student, family="mlp"),
            Row(ch, "student, KD", len(cfg.seeds), student + logits, family="mlp"),
            Row(ch, "student, KD: temperature × alpha sweep", sweep, student + logits,
                family="mlp")]


def omitted_rows(cfg: config.OmittedDigit, vanilla: config.VanillaKD | None) -> list[Row]:
    """Table 2: teachers not already trained by chapter 1, and two students per digit and seed.

    The transfer set is about 5/6 of the training images (the held-out sixth is
    never trained on) less the omitted digit's tenth.
    """
    t, s, ch = mlp_macs("teacher"), mlp_macs("student"), "02_omitted_digit"
    vcfg = omitted_digit.vanilla_config(cfg)
    shared = {str(mnist_kd.teacher_spec(vanilla, x)) for x in vanilla.seeds} if vanilla else set()
    own = [x for x in cfg.seeds if str(mnist_kd.teacher_spec(vcfg, x)) not in shared]
    transfer = cfg.train_size * 5 / 6 * 0.9
    student = 6 * s * transfer * cfg.student_epochs
    runs = len(cfg.seeds) * len(cfg.digits)
    return [Row(ch, "teacher (the checkpoint chapter 1 trained, when settings agree)", len(own),
                6 * t * cfg.train_size * cfg.teacher_epochs,
                f"{len(cfg.seeds) - len(own)} of {len(cfg.seeds)} shared with 01_vanilla_kd",
                "mlp"),
            Row(ch, "student without one digit, no KD", runs, student, "≈ transfer-set size",
                "mlp"),
            Row(ch, "student without one digit, KD", runs, student + 2 * t * transfer,
                "≈ transfer-set size", "mlp")]


def resnet_rows(cfg: Any, others: list[Any]) -> list[Row]:
    """Tables 3 and 4 (:mod:`kdlib.cifar_kd`): each method's ResNet, plus its teacher's
    forward pass on every batch. A ``baseline`` that an earlier chapter (`others`)
    already trains, with the same checkpoint, costs nothing here."""
    from kdlib import cifar_kd

    chapter = cifar_kd.chapter_of(cfg)
    channels, side, _ = cifar_kd.DATASETS[cfg.dataset]

    def macs(method: str) -> int:
        return resnet_macs(cifar_kd.ARCH[method], cfg.width, channels, side)

    images = cfg.train_size * cfg.epochs
    taken = {cifar_kd.checkpoint_path(o, "baseline", x) for o in others for x in o.seeds}
    rows = []
    for method in cifar_kd.METHODS[chapter]:
        per_image = 6 * macs(method)
        if method in cifar_kd.TEACHER:
            per_image += 2 * macs(cifar_kd.TEACHER[method])
        seeds = [x for x in cfg.seeds if method != "baseline"
                 or cifar_kd.checkpoint_path(cfg, method, x) not in taken]
        note = (f"{len(cfg.seeds) - len(seeds)} of {len(cfg.seeds)} shared with an earlier "
                f"chapter" if len(seeds) < len(cfg.seeds) else "")
        rows.append(Row(chapter, cifar_kd.LABELS[method], len(seeds), per_image * images, note))
    return rows


def autoattack_forwards(clean: float, robust: float) -> float:
    """Forward-pass equivalents per test image of standard AutoAttack (estimate).

    APGD-CE runs 100 iterations on the correctly classified points; the points
    it leaves robust go on to APGD-T and FAB-T (9 targets × 100 iterations
    each) and Square (5,000 queries). An iteration with a gradient costs 3
    forward passes, a query 1.
    """
    return clean * 100 * 3 + robust * (2 * 9 * 100 * 3 + 5000)


def adversarial_rows(cfg: config.AdversarialTfKD) -> list[Row]:
    """Table 5 (:mod:`kdlib.adversarial`): each method's training, then its evaluation.

    PGD-k training costs k + 1 clean steps, and a teacher fed the PGD example one
    forward pass per image; early stopping adds a PGD-k evaluation of the held-out
    images each epoch. The evaluation is PGD on the test images, standard
    AutoAttack on ``aa_size`` of them and Square alone on ``square_size``, costed at
    the paper's Table 5 clean and AutoAttack accuracy (mean of its rows).
    """
    from kdlib import adversarial as adv
    from kdlib import cifar_kd

    ch = adv.CHAPTER
    if cfg.arch == "mlp":
        m, family = models.count_cost(adv.build(cfg), (1, 28, 28)).macs, "mlp"
    else:
        channels, side, _ = cifar_kd.DATASETS[cfg.dataset]
        m, family = resnet_macs("resnet18", cfg.width, channels, side), "resnet"
    images = (cfg.train_size - cfg.val_size) * cfg.epochs
    attacked = (cfg.pgd_steps + 1) * 6 * m * images
    teacher = 2 * m * images
    stopping = (cfg.pgd_steps * 6 + 2) * m * cfg.val_size * cfg.epochs if cfg.early_stop else 0
    clean = sum(v[0] for v in paper.TABLE5.values()) / len(paper.TABLE5)
    robust = sum(v[1] for v in paper.TABLE5.values()) / len(paper.TABLE5)
    evaluation = 2 * m * (cfg.test_size * (cfg.eval_pgd_steps * 3 + 1)
                          + cfg.aa_size * autoattack_forwards(clean, robust)
                          + cfg.square_size * robust * 5000)
    n = len(cfg.seeds)
    pgd = f"PGD-{cfg.pgd_steps}"
    return [Row(ch, f"AT and AT + Tf-KD-reg ({pgd} training)", 2 * n, attacked + stopping,
                family=family),
            Row(ch, f"AKD and AT + Tf-KD-self ({pgd} training, AT teacher)", 2 * n,
                attacked + teacher + stopping, family=family),
            Row(ch, "undefended, and clean-trained student of the AT teacher", 2 * n,
                6 * m * images + teacher / 2, "beyond the paper", family=family),
            Row(ch, f"evaluation: PGD-{cfg.eval_pgd_steps}, AutoAttack on {cfg.aa_size:,}, "
                    f"Square on {cfg.square_size:,} images", 6 * n, evaluation,
                f"at the paper's mean clean {clean:.0%} and AutoAttack {robust:.0%}",
                family=family)]


def adversarial_markdown(cfg: config.AdversarialTfKD,
                         images_per_s: float = H100_IMAGES_PER_S) -> str:
    """Table 5's rows of :func:`cost_markdown` alone, with their total in H100 hours."""
    rate = achieved_flops(images_per_s)
    table = adversarial_rows(cfg)
    lines = ["| runs of | how many | PFLOP total | H100 hours |", "|---|---|---|---|"]
    lines += [f"| {r.what} | {r.runs} | {r.flops / 1e15:.3g} | {_hours(r.flops, rate)} |"
              for r in table]
    total = sum(r.flops for r in table)
    lines.append(f"| **total** | | **{total / 1e15:.3g}** | **{_hours(total, rate)}** |")
    return "\n".join([*lines, "", f"Hours at {rate / 1e12:.1f} TFLOP/s sustained (ResNet18 "
                       f"training at {images_per_s:,.0f} images/s in bf16 on one H100, the "
                       f"engine's target, not a measurement; at 20 TFLOP/s multiply by "
                       f"{rate / 20e12:.1f}). FLOPs: 2 per multiply-accumulate, 3 forward "
                       f"passes per trained image, PGD-k training k + 1 times that."])


def rows(profile: str | Path = "paper") -> list[Row]:
    """The cost rows of every chapter of `profile`; the paper's settings for missing ones."""
    cfgs = config.load_profile(profile)
    out: list[Row] = []
    if "01_vanilla_kd" in cfgs:
        out += vanilla_rows(cfgs["01_vanilla_kd"])
    if "02_omitted_digit" in cfgs:
        out += omitted_rows(cfgs["02_omitted_digit"], cfgs.get("01_vanilla_kd"))
    resnet_chapters = [c for c in ("03_reversed_kd", "04_teacher_free") if c in config.CHAPTERS]
    done: list[Any] = []
    for chapter in resnet_chapters:
        cfg = cfgs.get(chapter) or dataclasses.replace(config.CHAPTERS[chapter](), **PAPER_CIFAR)
        chapter_rows = resnet_rows(cfg, done)
        if chapter not in cfgs:
            chapter_rows = [dataclasses.replace(r, note=(r.note + "; " if r.note else "")
                                                + "assumed: paper settings (no profile section)")
                            for r in chapter_rows]
        out += chapter_rows
        done.append(cfg)
    if "05_gradients" in config.CHAPTERS:
        out.append(Row("05_gradients", "reads 04_teacher_free's records", 0, 0.0,
                       "no training of its own"))
    if "06_adversarial_tfkd" in cfgs:
        out += adversarial_rows(cfgs["06_adversarial_tfkd"])
    return out


# --- the table -----------------------------------------------------------------------------------

def _hours(flops: float, rate: float) -> str:
    h = flops / rate / 3600
    if h == 0:
        return "0"
    return "< 0.01" if h < 0.01 else f"{h:,.2f}" if h < 10 else f"{h:,.0f}"


def cost_markdown(profile: str | Path = "paper", images_per_s: float = H100_IMAGES_PER_S,
                  cpu_rate: Callable[[Row], float | None] | None = None) -> str:
    """The cost table of `profile` in Markdown, with its assumptions.

    `cpu_rate(row)` may give a measured FLOP/s for a row (the benchmark's default CPU
    engine, which the chapters use, by ``row.family``); it adds a column of hours at that
    rate.
    """
    rate = achieved_flops(images_per_s)
    table = rows(profile)
    head = ("| chapter | runs of | how many | PFLOP each | PFLOP total | H100 hours, total "
            "| note |")
    sep = "|---|---|---|---|---|---|---|"
    if cpu_rate:
        head = head.replace(" note |", " hours on the benchmark's CPU (default engine) | note |")
        sep += "---|"
    lines = [head, sep]
    for r in table:
        cells = [r.chapter, r.what, str(r.runs), f"{r.flops_per_run / 1e15:.3g}",
                 f"{r.flops / 1e15:.3g}", _hours(r.flops, rate)]
        if cpu_rate:
            cpu = cpu_rate(r)
            cells.append(_hours(r.flops, cpu) if cpu else "—")
        lines.append("| " + " | ".join(cells + [r.note]) + " |")
    total = sum(r.flops for r in table)
    lines.append(f"| **total** | | | | **{total / 1e15:.3g}** | **{_hours(total, rate)}** |"
                 + (" |" if cpu_rate else "") + " |")
    return "\n".join([
        *lines, "",
        f"Hours assume one H100 sustaining what ResNet18 CIFAR training in bf16 at "
        f"{images_per_s:,.0f} images/s amounts to, {rate / 1e12:.1f} TFLOP/s, for every row: "
        f"the speed target set for kdlib's engine, not a measurement (see the table above for "
        f"what was measured). At a more conservative 20 TFLOP/s multiply the hours by "
        f"{rate / 20e12:.1f}. FLOPs count 2 per multiply-accumulate and 3 forward passes per "
        f"trained image, plus a teacher's forward pass where one is used; PGD-7 training costs "
        f"8 clean steps. Rows marked *assumed* use the paper's settings where the profile has "
        f"no section yet.", ""])
