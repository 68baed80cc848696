"""What the pages of the image chapters (Tables 3 to 5, Figure 2) share: their setting in words,
their data and networks, and the conversions of the official code's loss weights."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from kdlib import losses, networks, runs, stats
from kdlib.chapters import images

#: How pages name each data set.
DATA_NAMES = {"cifar10": "CIFAR-10", "mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def scale(cfg: images.ImageRuns) -> str:
    """The scale a ResNet chapter's records decide its claims at, in words."""
    paper = cfg.dataset == "cifar10" and cfg.width == 64 and cfg.train_size == 50000
    where = "paper setting" if paper else f"stand-in (`{cfg.profile}`)"
    return (f"{where}: {DATA_NAMES[cfg.dataset]} {cfg.train_size:,} images, ResNets of width "
            f"{cfg.width}, {cfg.epochs} epochs, {len(cfg.seeds)} seed(s)")


def setting(cfg: images.ImageRuns) -> str:
    """A Markdown paragraph saying plainly what data and networks the page's runs used."""
    if cfg.dataset == "cifar10":
        size = ("the standard networks" if cfg.width == 64
                else f"**reduced to width {cfg.width}** (the standard networks have 64)")
        return (f"**Setting.** This page was built with the `{cfg.profile}` profile: CIFAR-10 "
                f"({cfg.train_size} training and {cfg.test_size} test images), CIFAR-form "
                f"ResNets of width {cfg.width} ({size}), {cfg.epochs} epochs, "
                f"{len(cfg.seeds)} seed(s).")
    name = DATA_NAMES[cfg.dataset]
    return (f"**A scaled replication on {name}, not CIFAR-10.** This page was built with the "
            f"`{cfg.profile}` profile, whose runs use a {cfg.train_size}-image subset of {name} "
            f"(tested on {cfg.test_size} {name} test images) and ResNet18/ResNet50 **reduced to "
            f"width {cfg.width}** (the standard networks have width 64), trained for "
            f"{cfg.epochs} epoch(s) over {len(cfg.seeds)} seed(s), so that it runs offline on a "
            f"CPU. The paper's numbers are CIFAR-10 accuracies of full-width networks trained "
            f"for about 200 epochs (this book's `paper` profile, which needs a GPU). Compare "
            f"the direction of each effect and its size against the seed-to-seed spread, not "
            f"the accuracies themselves.")


def data_summary(cfg: images.ImageRuns) -> pd.DataFrame:
    """Sizes, image shape and source of the page's data."""
    setup = images.data(cfg).load(str(_device(cfg)))
    return pd.DataFrame([{"data set": cfg.dataset, "training images": len(setup.y_train),
                          "test images": len(setup.y_test),
                          "image": "×".join(map(str, setup.x_train.shape[1:])),
                          "augmentation": cfg.augment, "device": str(setup.device),
                          "source": setup.source}]).set_index("data set")


def _device(cfg: images.ImageRuns) -> torch.device:
    from kdlib import training

    return training.resolve_device(cfg.device)


def model_table(cfg: images.ImageRuns, archs: Sequence[str] = ("resnet18", "resnet50")
                ) -> pd.DataFrame:
    """Parameters and per-image MACs of each network at `cfg`'s width and input size."""
    shape = networks.input_shape(images.data(cfg))
    rows = []
    for arch in archs:
        net = cfg.network(arch)
        rows.append({"network": arch, "width": cfg.width,
                     "parameters": sum(p.numel() for p in net.build().parameters()),
                     f"MACs per {shape[1]}×{shape[2]} image": networks.macs(net, shape)})
    return pd.DataFrame(rows).set_index("network")


def printed(table: pd.DataFrame) -> pd.DataFrame:
    """Print a comparison table's paper and run columns (what nbval compares) and return it."""
    print(table[["paper", "this build", "runs"]].to_string())
    return table


def paper_gain_sentence(treated: str, ref: tuple[float, float], baseline: str,
                        base: tuple[float, float], n: int = 3) -> str:
    """What the paper's own ``mean ± std`` cells say about its claimed gain."""
    gain = 100 * (ref[0] - base[0])
    spread = 100 * max(ref[1], base[1])
    p = stats.welch_p_from_summary(*ref, n, *base, n)
    verdict = ("larger than the spread across its runs" if gain > spread and p < 0.05
               else "inside the spread across its runs")
    return (f"Paper, {treated} vs {baseline}: {gain:+.2f} points (largest std {spread:.2f}, "
            f"Welch p = {p:.3g} from its mean ± std over n = {n}): {verdict}.")


def batchmean_alpha(alpha: float, num_classes: int, multiplier: float = 1.0) -> float:
    """Our α for the official code's ``(1-α)·CE + α·multiplier·T²·KL_mean``.

    ``KL_mean`` (``reduction='mean'``) is our ``batchmean`` KL divided by K, so the
    official soft term weighs ``w = α·multiplier/K`` against ``1-α`` for the hard
    term. Keeping that ratio in ``(1-α')·CE + α'·T²·KL`` gives ``α' = w/(1-α+w)``.
    The overall factor ``1-α+w`` is dropped: with SGD it would act as a change of
    learning rate.
    """
    w = alpha * multiplier / num_classes
    return w / (1 - alpha + w)


def conversion_table() -> pd.DataFrame:
    """The official hyper-parameters (CIFAR-100) and their α in our loss at K = 10 and 100."""
    rows = [("Re-KD", 0.6, 20.0, 1.0), ("Tf-KD-self", 0.95, 6.0, 50.0)]
    return pd.DataFrame([{"method": m, "official α": a, "T": t, "multiplier": k,
                          "our α, K = 10 (CIFAR-10)": round(batchmean_alpha(a, 10, k), 4),
                          "our α, K = 100 (CIFAR-100)": round(batchmean_alpha(a, 100, k), 4)}
                         for m, a, t, k in rows]).set_index("method")


def matched_smoothing(cfg: images.TfKdLosses, num_classes: int = images.NUM_CLASSES) -> float:
    """The ε of label smoothing whose targets put as much mass on the wrong classes as the
    official Tf-KD-reg loss does.

    That loss, ``(1-α)·CE + w·KL(q ‖ softmax(s))`` with ``w = α·multiplier/K`` on the
    ``batchmean`` KL, is (up to a constant) cross-entropy against the target
    ``((1-α)·onehot + w·q) / (1-α+w)``, whose wrong classes hold ``w·(1-q_correct)/(1-α+w)``;
    label smoothing's hold ``ε·(K-1)/K``.
    """
    q = losses.virtual_teacher(torch.tensor([0]), num_classes, cfg.tf_reg_official_delta,
                               cfg.tf_reg_temperature)[0]
    w = cfg.tf_reg_alpha * cfg.tf_reg_official_multiplier / num_classes
    wrong = w * (1 - float(q[0])) / (1 - cfg.tf_reg_alpha + w)
    return wrong * num_classes / (num_classes - 1)


def provenance(records: runs.Records) -> pd.DataFrame:
    return runs.provenance(records, {
        "test acc (%)": lambda r: round(100 * r.metric("test_acc"), 2)})
