"""The instability rule on hand-made training histories, starting from four real ones."""

import dataclasses
import math

import pytest

from kdlib import instability as ins
from kdlib.instability import Flag


def history(losses, held_out=None, key="held_out_pgd_acc"):
    """Per-epoch rows as the training loop records them (epochs from 1)."""
    rows = [{"epoch": i + 1, "loss": loss, "lr": 0.1, "seconds": 1.0}
            for i, loss in enumerate(losses)]
    for row, acc in zip(rows, held_out or [], strict=False):
        row[key] = acc
    return rows


# AT + Tf-KD-self on MNIST, 5 epochs, the attack's ε ramped up over the first 3
SEED_0 = history([3.506, 0.576, 6.496, 1.144, 0.58], [0.038, 0.268, 0.592, 0.821, 0.804])
SEED_1 = history([3.769, 0.536, 0.392, 0.095, 0.074])
SEED_2 = history([3.603, 0.377, 0.677, 0.098, 0.073])
PLAIN_AT = history([1.12, 0.566, 0.602, 0.325, 0.272])


def test_seed_0_spikes_at_epoch_3():
    found = ins.flags(SEED_0)
    assert found == ins.loss_spikes(SEED_0)
    assert [(f.kind, f.epoch) for f in found] == [("loss spike", 3)]
    assert found[0].detail == ("loss rose from 0.576 at epoch 2 to 6.496 at epoch 3, 11.3× "
                               "(more than 3×)")
    assert ins.unstable(SEED_0)
    # its held-out accuracy kept rising through the spike; the last dip (0.017) is no collapse
    assert ins.held_out_collapses(SEED_0) == []


@pytest.mark.parametrize("hist", [SEED_1, SEED_2, PLAIN_AT], ids=["seed 1", "seed 2", "AT"])
def test_the_other_runs_are_stable(hist):
    assert ins.flags(hist) == []
    assert ins.loss_spikes(hist) == [] and ins.held_out_collapses(hist) == []
    assert ins.unstable(hist) is False


def test_seed_2s_rise_while_epsilon_grows_is_below_the_factor():
    # 0.377 -> 0.677 is 1.8×: flagged only with a much lower factor
    assert ins.loss_spikes(SEED_2) == []
    assert [f.epoch for f in ins.loss_spikes(SEED_2, factor=1.7)] == [3]
    assert [f.epoch for f in ins.loss_spikes(SEED_2, 1.8)] == []
    assert ins.unstable(SEED_2, factor=1.5)
    assert [f.epoch for f in ins.loss_spikes(PLAIN_AT, factor=1.05)] == [3]
    # seed 0's 11.3× spike is caught up to that factor
    assert [f.epoch for f in ins.loss_spikes(SEED_0, factor=11.2)] == [3]
    assert ins.loss_spikes(SEED_0, factor=11.3) == []
    assert not ins.unstable(SEED_0, factor=12.0)


def test_a_held_out_collapse():
    hist = history([1.0, 0.8, 0.7, 0.6, 0.5], [0.50, 0.70, 0.55, 0.75, 0.62])
    found = ins.held_out_collapses(hist)
    assert [(f.kind, f.epoch) for f in found] == [("held-out collapse", 3),
                                                  ("held-out collapse", 5)]
    assert found[0].detail == ("held-out accuracy fell to 0.550 at epoch 3, 0.150 below the best "
                               "0.700 of epoch 2 (more than 0.1)")
    assert found[1].detail == ("held-out accuracy fell to 0.620 at epoch 5, 0.130 below the best "
                               "0.750 of epoch 4 (more than 0.1)")
    assert ins.flags(hist) == found and ins.unstable(hist)
    assert ins.loss_spikes(hist) == []


def test_a_collapse_that_lasts_is_flagged_every_epoch():
    hist = history([1.0] * 5, [0.8, 0.3, 0.2, 0.75, 0.85])
    assert [f.epoch for f in ins.held_out_collapses(hist)] == [2, 3]
    # and the best is the best so far, not the first epoch's
    hist = history([1.0] * 4, [0.3, 0.9, 0.85, 0.7])
    found = ins.held_out_collapses(hist)
    assert [f.epoch for f in found] == [4]
    assert "0.200 below the best 0.900 of epoch 2" in found[0].detail


def test_exactly_the_factor_is_not_a_spike():
    assert ins.loss_spikes(history([1.0, 3.0])) == []
    assert ins.loss_spikes(history([0.2, 0.6])) == []  # 3 * 0.2 is 0.6000000000000001
    assert ins.loss_spikes(history([0.1, 0.3])) == []
    assert ins.loss_spikes(history([0.7, 2.1])) == []
    assert [f.epoch for f in ins.loss_spikes(history([1.0, 3.001]))] == [2]
    assert ins.loss_spikes(history([1.0, 2.0]), factor=2.0) == []
    assert [f.epoch for f in ins.loss_spikes(history([1.0, 2.01]), factor=2.0)] == [2]


def test_exactly_the_drop_is_not_a_collapse():
    for best, acc in ((0.8, 0.7), (0.75, 0.65), (0.3, 0.2), (0.9, 0.8)):
        assert ins.held_out_collapses(history([1.0, 1.0], [best, acc])) == []
    assert [f.epoch for f in ins.held_out_collapses(history([1.0, 1.0], [0.8, 0.699]))] == [2]
    assert ins.held_out_collapses(history([1.0, 1.0], [0.8, 0.75]), drop=0.05) == []
    assert [f.epoch for f in ins.held_out_collapses(history([1.0, 1.0], [0.8, 0.749]),
                                                    drop=0.05)] == [2]


def test_non_default_drop_and_key():
    # seed 0's last dip, 0.821 -> 0.804, is a collapse at a drop of 0.01
    found = ins.held_out_collapses(SEED_0, drop=0.01)
    assert [(f.kind, f.epoch) for f in found] == [("held-out collapse", 5)]
    assert [(f.kind, f.epoch) for f in ins.flags(SEED_0, drop=0.01)] == [
        ("loss spike", 3), ("held-out collapse", 5)]
    # another score recorded by early stopping
    hist = history([1.0, 0.9, 0.8], [0.9, 0.5, 0.95], key="held_out_score")
    assert ins.held_out_collapses(hist) == []  # not the default key
    assert [f.epoch for f in ins.held_out_collapses(hist, key="held_out_score")] == [2]
    assert ins.unstable(hist, key="held_out_score")
    assert not ins.unstable(hist)


def test_empty_and_single_epoch_histories():
    assert ins.flags([]) == [] and ins.unstable([]) is False
    assert ins.loss_spikes([]) == [] and ins.held_out_collapses([]) == []
    one = history([50.0], [0.0])
    assert ins.flags(one) == [] and not ins.unstable(one)


def test_missing_held_out_key():
    hist = history([1.0, 0.5, 0.4])
    assert all("held_out_pgd_acc" not in row for row in hist)
    assert ins.held_out_collapses(hist) == []
    # scores on some epochs only (e.g. a resumed run): the others are skipped
    hist = history([1.0, 0.5, 0.4, 0.3])
    hist[0]["held_out_pgd_acc"] = 0.9
    hist[3]["held_out_pgd_acc"] = 0.5
    assert [f.epoch for f in ins.held_out_collapses(hist)] == [4]
    hist[2]["held_out_pgd_acc"] = math.nan  # a NaN score is no score
    assert [f.epoch for f in ins.held_out_collapses(hist)] == [4]


def test_a_loss_that_is_not_finite_is_a_spike():
    found = ins.loss_spikes(history([1.0, math.nan, 0.5]))
    assert [(f.kind, f.epoch, f.detail) for f in found] == [
        ("loss spike", 2, "loss is nan at epoch 2: training diverged")]
    # the epoch after a NaN has nothing to compare with
    found = ins.loss_spikes(history([math.inf, 0.5, 0.1]))
    assert [(f.epoch, f.detail) for f in found] == [(1, "loss is inf at epoch 1: training "
                                                        "diverged")]
    assert ins.unstable(history([0.5, 0.4, math.nan]))


def test_a_loss_after_a_loss_that_is_not_positive_is_not_compared():
    assert ins.loss_spikes(history([0.0, 0.5])) == []
    assert ins.loss_spikes(history([-0.1, 0.5, 0.4])) == []


def test_flags_are_in_epoch_order_loss_spike_first():
    hist = history([1.0, 0.5, 0.4, 2.0, 0.3], [0.5, 0.8, 0.6, 0.8, 0.85])
    assert [(f.kind, f.epoch) for f in ins.flags(hist)] == [
        ("held-out collapse", 3), ("loss spike", 4)]
    hist = history([1.0, 4.0], [0.8, 0.5])
    assert [(f.kind, f.epoch) for f in ins.flags(hist)] == [
        ("loss spike", 2), ("held-out collapse", 2)]


def test_flags_are_frozen_values():
    f = Flag("loss spike", 3, "x")
    assert f == Flag(kind="loss spike", epoch=3, detail="x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.epoch = 4  # type: ignore[misc]
    assert (ins.LOSS_SPIKE, ins.HELD_OUT_COLLAPSE) == ("loss spike", "held-out collapse")


def test_a_tie_keeps_the_first_best_epoch_and_unstable_passes_its_drop():
    hist = history([1.0] * 3, [0.8, 0.8, 0.6])
    (found,) = ins.held_out_collapses(hist)
    assert "0.200 below the best 0.800 of epoch 1" in found.detail
    dip = history([1.0, 1.0], [0.8, 0.74])
    assert not ins.unstable(dip) and ins.unstable(dip, drop=0.05)
    assert not ins.unstable(dip, drop=0.07)
    assert ins._beyond(0.5, 0.4) and not ins._beyond(0.4, 0.4) and not ins._beyond(0.3, 0.4)


# --- collapse to chance ---------------------------------------------------------------


def test_a_run_that_collapsed_to_chance_is_flagged_and_a_learning_run_is_not():
    flat = [{"epoch": e, "loss": 2.07, "ce": c} for e, c in
            enumerate((2.277, 2.302, 2.302, 2.301, 2.301), 1)]
    flags = ins.flags(flat, metrics={"clean_acc": 0.1045, "history": flat})
    assert [f.kind for f in flags] == [ins.CHANCE] and flags[0].epoch == 5
    assert "0.1045" in flags[0].detail
    # the loss alone: flat at log 10, whatever the accuracy key
    assert ins.chance_collapse({"history": flat})[0].kind == ins.CHANCE
    learnt = [{"epoch": e, "loss": v, "ce": v} for e, v in enumerate((1.28, 0.72, 0.41), 1)]
    assert ins.flags(learnt, metrics={"clean_acc": 0.979, "history": learnt}) == []
    # the thresholds: 0.05 of chance, 10% of log K
    assert ins.chance_collapse({"test_acc": 0.149})
    assert not ins.chance_collapse({"test_acc": 0.151})
    near = [{"epoch": 1, "loss": 0.9 * math.log(10) - 0.01}]
    assert not ins.chance_collapse({"history": near})
    assert ins.chance_collapse({"history": [{"epoch": 1, "loss": 0.91 * math.log(10)}]})
    # without metrics the history rules alone apply
    assert ins.flags(flat) == []


def test_a_chance_flag_from_the_accuracy_alone_and_its_detail():
    # no history: no last epoch to name, so epoch 0
    assert ins.chance_collapse({"test_acc": 0.1}) == [
        Flag(ins.CHANCE, 0, "final accuracy 0.1000, within 0.05 of chance (0.1)")]
    (found,) = ins.chance_collapse({"clean_acc": 0.26}, num_classes=4)
    assert found.detail == "final accuracy 0.2600, within 0.05 of chance (0.25)"
    assert ins.chance_collapse({"clean_acc": 0.26}) == []  # 0.16 from 10 classes' chance


def test_a_chance_flag_from_the_cross_entropy_names_the_last_epoch():
    flat = [{"epoch": e, "loss": 2.07, "ce": c} for e, c in enumerate((2.277, 2.302, 2.301), 1)]
    assert ins.chance_collapse({"history": flat}) == [
        Flag(ins.CHANCE, 3, "cross-entropy 2.301 at the last epoch, within 10% of log 10 = "
                            "2.303 (a uniform prediction)")]


def test_within_the_chance_thresholds_includes_the_thresholds():
    # |0.5 - 1/4| and |2·log 10 - log 10| are exactly the margins, in floating point too
    assert ins.chance_collapse({"test_acc": 0.5}, num_classes=4, chance_margin=0.25)
    assert not ins.chance_collapse({"test_acc": 0.5001}, num_classes=4, chance_margin=0.25)
    last = [{"epoch": 1, "loss": 2 * math.log(10)}]
    assert ins.chance_collapse({"history": last}, flat_share=1.0)
    assert not ins.chance_collapse({"history": last}, flat_share=0.99)


def test_flags_and_unstable_with_a_record():
    # ten classes unless told: 0.149 is within 0.05 of 1/10, not of 1/11 or 1/4
    assert [f.kind for f in ins.flags([], metrics={"test_acc": 0.149})] == [ins.CHANCE]
    assert ins.flags([], metrics={"test_acc": 0.149}, num_classes=11) == []
    assert ins.flags([], metrics={"test_acc": 0.149}, num_classes=4) == []
    assert [f.kind for f in ins.flags([], metrics={"test_acc": 0.27}, num_classes=4)] == [
        ins.CHANCE]
    # a loss spike and a collapse to chance are both kept, in epoch order
    assert [(f.kind, f.epoch) for f in ins.flags(SEED_0, metrics={"clean_acc": 0.11,
                                                                    "history": SEED_0})] == [
        ("loss spike", 3), ("collapse to chance", 5)]
    # unstable looks at the record too
    assert ins.unstable(SEED_1, metrics={"clean_acc": 0.11, "history": SEED_1})
    assert not ins.unstable(SEED_1, metrics={"clean_acc": 0.97, "history": SEED_1})


def test_unstable_flags_a_rise_beyond_three_times_by_default():
    assert ins.unstable(history([1.0, 3.5]))  # 3.5×
    assert not ins.unstable(history([1.0, 2.9]))
