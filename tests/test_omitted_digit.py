"""Table 2: the omitted digit never reaches a student; the bias shift never sees the test set."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdlib import chapters, config, data, digits, models, networks, runs, training
from kdlib.chapters import mnist
from kdlib.chapters import omitted_digit as od
from kdlib.pages import table2 as page

DIGIT = 1
TEACHER_FIELDS = ("dataset", "train_size", "batch_size", "teacher_epochs", "teacher_lr",
                  "teacher_dropout", "teacher_jitter")


@pytest.fixture(scope="module")
def cfg():
    return dataclasses.replace(od.Params(), profile="unit", train_size=768,
                               device="cpu", digits=[DIGIT])


@pytest.fixture(scope="module")
def transfer(cfg):
    """The student's data: the drawn images that are not held out, without `DIGIT`."""
    return od.transfer(cfg, DIGIT)


@pytest.fixture(scope="module")
def whole(cfg):
    """The teacher's data, loaded: every drawn training image."""
    return mnist.data(cfg).load("cpu")


def index(cfg):
    """Positions of the drawn training images in the full split."""
    return data.subset_indices(60000, cfg.train_size)


@pytest.fixture(scope="module")
def teacher_cache(tmp_path_factory):
    """One checkpoint folder for this module, so its tests train the teacher once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def shared_teacher(teacher_cache, monkeypatch):
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(teacher_cache))


def image_bytes(x):
    """Each image as bytes, to compare sets of images exactly."""
    return {bytes(row) for row in (x * 255).round().to(torch.uint8).flatten(1).numpy()}


# --- data ---------------------------------------------------------------------------------------

def test_transfer_set_and_held_out_split(cfg, transfer, whole):
    idx = index(cfg)
    held = idx >= od.HELD_OUT_FROM
    expected = ~held & (whole.y_train != DIGIT)
    cut = transfer.load("cpu")
    assert torch.equal(cut.x_train, whole.x_train[expected])
    assert torch.equal(cut.y_train, whole.y_train[expected])
    assert (cut.y_train != DIGIT).all() and len(set(cut.y_train.tolist())) == 9
    assert torch.equal(transfer.held_out_images("cpu"), whole.x_train[held])
    assert int(held.sum()) > 0
    assert torch.equal(cut.x_test, whole.x_test)  # the whole test split, untouched
    # the teacher's data is exactly chapter 1's, and the cuts' whole
    assert transfer.whole == mnist.data(cfg) == mnist.teacher(cfg, 0).data
    assert digits.class_frequency(torch.tensor([1, 1, 2, 3]), 1) == 0.5


def test_on_the_full_training_set_the_held_out_images_are_the_validation_split():
    full = data.subset_indices(60000, 60000)
    keep, held = networks.cuts(full, torch.zeros(60000, dtype=torch.long), 50_000, None)
    assert torch.equal(held, torch.arange(60000) >= 50000) and torch.equal(keep, ~held)


def all_shifts(x, s):
    """Every translation of every image of `x` by up to `s` pixels in x and y."""
    padded = F.pad(x, (s, s, s, s))
    h, w = x.shape[-2:]
    return torch.cat([padded[..., i:i + h, j:j + w]
                      for i in range(2 * s + 1) for j in range(2 * s + 1)])


# --- the omitted digit never reaches a student ------------------------------------------------

@pytest.mark.slow  # trains students on real MNIST
def test_omitted_digit_never_reaches_a_student(cfg, transfer, monkeypatch, shared_teacher):
    # the teacher (all ten digits) is trained first, as chapter 1 trains it
    networks.trained(mnist.teacher(cfg, 0), "cpu", progress=False)
    seen = []
    real_train = training.train

    def spying_train(model, objective, x, y, recipe, **kw):
        def spy(model, xb, yb):
            labels = yb["labels"] if isinstance(yb, dict) else yb
            seen.append((kw["desc"], labels.clone(), xb.detach().clone()))
            return objective(model, xb, yb)

        return real_train(model, spy, x, y, recipe, **kw)

    monkeypatch.setattr(training, "train", spying_train)
    shift = digits.BiasShift()
    for kd in (False, True):
        digits.omitted_metrics(od.student(cfg, 0, DIGIT, kd), shift, "cpu", progress=False)

    # only the two students trained: the distilled one reused chapter 1's cached teacher
    assert {desc.split()[0] for desc, _, _ in seen} == {"student", "student_kd"}
    labels = torch.cat([y for _, y, _ in seen])
    assert len(labels) > 0 and DIGIT not in labels.tolist()
    # every image in every batch is a transfer image, shifted by up to `student_jitter`
    # pixels (zeros fill in), and none is a held-out image
    assert cfg.student_jitter > 0
    allowed = image_bytes(all_shifts(transfer.load("cpu").x_train, cfg.student_jitter))
    batches = image_bytes(torch.cat([x for _, _, x in seen]))
    assert batches <= allowed
    assert image_bytes(transfer.held_out_images("cpu")) - allowed  # the check would catch it


# --- the bias shift -----------------------------------------------------------------------------

def hand_made_logits(n=2000, digit=3, seed=0):
    """Confident logits on labels 0..9 in turn, with `digit`'s logit pushed far down."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    logits = torch.randn(n, 10, generator=g) + 5 * F.one_hot(y, 10)
    logits[:, digit] -= 8
    return logits, y


def test_bias_shift_hits_the_target_share_on_hand_made_logits():
    logits, y = hand_made_logits()
    assert digits.predicted_share(logits, 3) < 0.01  # class 3 is badly under-predicted
    shift = digits.choose_bias_shift(logits, 3, 0.1)
    share = digits.predicted_share(logits, 3, shift)
    assert shift > 0
    assert 0.1 <= share <= 0.1 + 2 / len(y)  # reaches the target ...
    assert digits.predicted_share(logits, 3, shift - 1e-3) < 0.1  # ... with the smallest shift
    # the fraction rule is the target quantile of the margins max_{j != d} z_j - z_d
    others = logits.clone()
    others[:, 3] = -float("inf")
    margins = (others.max(1).values - logits[:, 3]).sort().values
    assert shift == pytest.approx(float(margins[199]), abs=2e-4)
    # after the shift the class-3 images are recognised again, and few others are taken
    pred = (logits + shift * F.one_hot(torch.tensor(3), 10)).argmax(1)
    assert (pred[y == 3] == 3).float().mean() > 0.9
    assert (pred[y != 3] == y[y != 3]).float().mean() > 0.95
    # the mass rule matches the mean probability instead
    mass_shift = digits.choose_bias_shift(logits, 3, 0.1, "mass")
    assert digits.predicted_share(logits, 3, mass_shift, "mass") == pytest.approx(0.1, abs=1e-3)


def test_bias_shift_can_be_negative_and_refuses_bad_input():
    logits, _ = hand_made_logits(digit=3)
    logits[:, 5] += 8  # class 5 is now over-predicted
    assert digits.choose_bias_shift(logits, 5, 0.1) < 0
    with pytest.raises(ValueError, match="finite"):
        digits.choose_bias_shift(torch.full((4, 10), float("nan")), 5, 0.1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        digits.choose_bias_shift(logits, 5, 0.0)


def test_apply_bias_shift_moves_one_logit_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = models.student_mlp()
    x = torch.rand(8, 1, 28, 28)
    before = training.predict(model, x)
    after = training.predict(digits.apply_bias_shift(model, 2, 1.5), x)
    expected = before.clone()
    expected[:, 2] += 1.5
    torch.testing.assert_close(after, expected)
    torch.testing.assert_close(training.predict(model, x), before)


@pytest.mark.slow  # trains students on real MNIST
def test_bias_shift_is_chosen_without_the_test_set(cfg, transfer, monkeypatch, shared_teacher):
    student, shift = od.student(cfg, 0, DIGIT, True), digits.BiasShift()
    clean = digits.omitted_metrics(student, shift, "cpu", progress=False)
    calls = []
    real_choose = digits.choose_bias_shift

    def recording_choose(logits, *args, **kwargs):
        calls.append(logits.clone())
        return real_choose(logits, *args, **kwargs)

    monkeypatch.setattr(digits, "choose_bias_shift", recording_choose)
    real_load = networks.Data.load

    def poisoned(self, device):  # every test image poisoned and every label wrong
        setup = real_load(self, device)
        return dataclasses.replace(setup, x_test=torch.full_like(setup.x_test, float("nan")),
                                   y_test=(setup.y_test + 1) % 10)

    monkeypatch.setattr(networks.Data, "load", poisoned)
    dirty = digits.omitted_metrics(student, shift, "cpu", progress=False)
    assert dirty["shift"] == clean["shift"] and dirty["mass_shift"] == clean["mass_shift"]
    assert dirty["digit_acc"] != clean["digit_acc"] or dirty["others_acc"] != clean["others_acc"]
    # the selection saw the student's logits on the held-out images, and nothing else
    n_held = len(transfer.held_out_images("cpu"))
    assert len(calls) == 2 and all(c.shape == (n_held, 10) for c in calls)
    assert all(bool(torch.isfinite(c).all()) for c in calls)


# --- evaluation ---------------------------------------------------------------------------------

def test_confusion_matrix_and_accuracies_by_hand():
    y = torch.tensor([0, 0, 1, 1, 2])
    pred = torch.tensor([0, 1, 1, 1, 0])
    conf = digits.confusion_matrix(pred, y, 3)
    assert conf.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert digits.per_class_accuracy(conf) == [0.5, 1.0, 0.0]
    m = digits.evaluate(F.one_hot(pred, 3).float(), y, digit=2)
    assert (m["test_acc"], m["others_acc"], m["digit_acc"]) == pytest.approx((0.6, 0.75, 0.0))


@pytest.mark.slow  # trains students on real MNIST
def test_chapter_runs_tables_and_figure(cfg, transfer, shared_teacher):
    records = runs.run_all(od.plan(cfg), progress=False)
    assert set(records) == {"teacher", "student_omit1", "student_kd_omit1"}
    kd = records["student_kd_omit1"][0]
    assert kd.spec["objective"]["teacher"] == mnist.teacher(cfg, 0).spec()
    assert kd.spec["data"]["omitted_digit"] == DIGIT
    assert kd.spec["evaluation"] == digits.BiasShift().spec()
    assert kd.metrics["transfer_size"] == len(transfer.load("cpu").y_train)
    assert len(kd.metrics["shifted_per_class_acc"]) == 10
    table = page.table2(records)
    assert list(table.index) == ["omit 1: no KD (T=1)", "omit 1: KD (T=10)",
                                 "omit 1: KD + bias shift"]
    assert table.loc["omit 1: KD (T=10)", "paper: only digit"] == "98.50"
    assert page.bias_table(records).shape[0] == 2
    cells = page.table2_cells(records)
    assert cells["t2_2_kd_digit"] == "not run" and cells["t2_1_kd_digit"] != "not run"
    assert len(page.summary_sentences(records)) == 1
    page.per_class_figure(records)
    assert runs.saved(od.plan(cfg)) == records


# --- parameters ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["smoke", "quick", "paper"])
def test_profiles_share_the_teacher_between_chapters_1_and_2(name):
    cfgs = chapters.load_profile(name)
    ch1, ch2 = cfgs["01_vanilla_kd"], cfgs["02_omitted_digit"]
    assert {k: getattr(ch2, k) for k in TEACHER_FIELDS} == \
        {k: getattr(ch1, k) for k in TEACHER_FIELDS}
    assert set(ch2.seeds) <= set(ch1.seeds)  # every teacher chapter 2 needs, chapter 1 trains
    for seed in ch2.seeds:
        assert mnist.teacher(ch2, seed) == mnist.teacher(ch1, seed)


@pytest.mark.parametrize("digits, message", [
    ([], "must not be empty"), ([10], "must be <= 9"), ([-1], "must be >= 0"),
    ([1, 1], "must not repeat"), ([1.0], "expected list"),
])
def test_bad_digits_are_refused(digits, message):
    params = {**config.as_dict(od.Params()), "digits": digits}
    with pytest.raises(config.ProfileError, match=message):
        chapters.validate("02_omitted_digit", params)


# --- the split and the bias shift on small hand-made tensors ---------------------------------

def test_the_cuts_by_hand():
    """Eight drawn images at positions 0..7 of the split; from position 4 on they are held
    out (4, 5, 6, 7); of the rest (0..3, labels 1, 2, 1, 3) the 1s are omitted."""
    idx, labels = torch.arange(8), torch.tensor([1, 2, 1, 3, 1, 2, 0, 1])
    keep, held = networks.cuts(idx, labels, 4, 1)
    assert held.tolist() == [False] * 4 + [True] * 4
    assert keep.tolist() == [False, True, False, True] + [False] * 4
    keep, held = networks.cuts(idx[[5, 0, 7, 2]], labels[[5, 0, 7, 2]], 4, 2)  # drawn order
    assert held.tolist() == [True, False, True, False] and keep.tolist() == [False, True] * 2
    keep, held = networks.cuts(idx, labels, None, 7)  # absent digit, nothing held out
    assert keep.all() and not held.any()
    keep, held = networks.cuts(idx, labels, 60_000, None)
    assert keep.all() and not held.any()


def test_class_frequency_by_hand():
    labels = torch.tensor([0, 1, 2, 3, 4, 4, 4, 1])
    assert digits.class_frequency(labels, 4) == 3 / 8
    assert digits.class_frequency(labels, 1) == 0.25
    assert digits.class_frequency(labels, 9) == 0.0
    assert type(digits.class_frequency(labels, 0)) is float


# rows: top class 2, 0, 1, 1; digit 0 wins row 1 by 3, loses row 3 by 0.5 and rows 0, 2 by 2
SHARE_LOGITS = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0], [0.0, 2.0, 1.0], [1.0, 1.5, 0.0]])


def softmax_row(row):
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def test_predicted_share_by_hand():
    z = SHARE_LOGITS.clone()
    assert digits.predicted_share(z, 0) == 0.25
    assert digits.predicted_share(z, 1) == 0.5 and digits.predicted_share(z, 2) == 0.25
    assert digits.predicted_share(z, 0, 1.0) == 0.5  # row 3 now 2.0 vs 1.5
    assert digits.predicted_share(z, 0, 2.5) == 1.0
    assert digits.predicted_share(z, 0, -4.0) == 0.0
    assert digits.predicted_share(z, 1, -0.75, "fraction") == 0.25
    mass = sum(softmax_row(r)[0] for r in z.tolist()) / 4
    assert digits.predicted_share(z, 0, criterion="mass") == pytest.approx(mass, abs=1e-6)
    shifted = [[r[0] + 1.0, r[1], r[2]] for r in z.tolist()]
    mass1 = sum(softmax_row(r)[0] for r in shifted) / 4
    assert digits.predicted_share(z, 0, 1.0, "mass") == pytest.approx(mass1, abs=1e-6)
    assert digits.predicted_share(z.double(), 0, 1.0, "mass") == pytest.approx(mass1, abs=1e-6)
    assert torch.equal(z, SHARE_LOGITS)  # the caller's logits are left alone
    with pytest.raises(ValueError, match="unknown criterion"):
        digits.predicted_share(z, 0, 0.0, "votes")


def margins_logits(margins):
    """Two-class logits whose class-1 margin max_{j != 1} z_j - z_1 is each of `margins`."""
    m = torch.tensor(margins)
    return torch.stack([m, torch.zeros_like(m)], 1)


def test_bias_shift_is_the_quantile_of_the_margins_by_hand():
    logits = margins_logits([0.5, 3.7, 1.3, 5.1])
    # to predict class 1 on half of the rows, its logit must overtake the two smallest
    # margins, 0.5 and 1.3: the smallest such shift is 1.3
    shift = digits.choose_bias_shift(logits, 1, 0.5)
    assert shift == pytest.approx(1.3, abs=1e-4) and shift >= 1.3
    assert digits.choose_bias_shift(logits, 1, 0.25) == pytest.approx(0.5, abs=1e-4)
    assert digits.choose_bias_shift(logits, 1, 0.75) == pytest.approx(3.7, abs=1e-4)
    assert digits.choose_bias_shift(logits, 1, 0.9) == pytest.approx(5.1, abs=1e-4)
    # the default tolerance is 1e-4; a coarser one still reaches the target, from above
    assert digits.choose_bias_shift(logits, 1, 0.5, tol=1e-6) == pytest.approx(1.3, abs=1e-6)
    coarse = digits.choose_bias_shift(logits, 1, 0.5, tol=0.5)
    assert 1.3 <= coarse <= 1.8 and digits.predicted_share(logits, 1, coarse) >= 0.5


def test_bias_shift_below_minus_one_by_hand():
    # margins -3.3, -2.5, 4, 5: a share of exactly 1/2 is already reached at shifts -1 and -2,
    # so the bracket must keep growing downwards until the share falls below the target
    logits = margins_logits([-3.3, 4.0, -2.5, 5.0])
    assert digits.choose_bias_shift(logits, 1, 0.5) == pytest.approx(-2.5, abs=1e-4)
    assert digits.choose_bias_shift(logits, 1, 0.25) == pytest.approx(-3.3, abs=1e-4)
    assert digits.choose_bias_shift(logits, 1, 0.75) == pytest.approx(4.0, abs=1e-4)
    far = margins_logits([-20.0, -30.0, 40.0, 50.0])  # many doublings either way
    assert digits.choose_bias_shift(far, 1, 0.5) == pytest.approx(-20.0, abs=1e-4)
    assert digits.choose_bias_shift(far, 1, 0.75) == pytest.approx(40.0, abs=1e-4)


def test_mass_shift_by_hand():
    # one row: the softmax mass of class 1 is sigmoid(b - margin); it is 1/2 at b = margin
    assert digits.choose_bias_shift(margins_logits([1.5]), 1, 0.5, "mass") == \
        pytest.approx(1.5, abs=1e-4)
    # margins 1 and 3: sigmoid(b - 1) + sigmoid(b - 3) = 1 at b = 2, by symmetry
    assert digits.choose_bias_shift(margins_logits([1.0, 3.0]), 1, 0.5, "mass") == \
        pytest.approx(2.0, abs=1e-4)
    # sigmoid(b) = 0.2 at b = ln(0.2 / 0.8)
    assert digits.choose_bias_shift(margins_logits([0.0]), 1, 0.2, "mass") == \
        pytest.approx(math.log(0.25), abs=1e-4)


@pytest.mark.parametrize("target", [0.0, 1.0, -0.1, 1.5])
def test_bias_shift_target_must_be_a_share(target):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        digits.choose_bias_shift(margins_logits([1.0, 2.0]), 1, target)


def test_bias_shift_accepts_any_share_strictly_inside():
    logits = margins_logits([1.0, 2.0])
    assert digits.choose_bias_shift(logits, 1, 0.01) == pytest.approx(1.0, abs=1e-4)
    assert digits.choose_bias_shift(logits, 1, 0.99) == pytest.approx(2.0, abs=1e-4)


@pytest.mark.parametrize("logits", [torch.zeros(0, 10), torch.zeros(10), torch.zeros(2, 3, 4),
                                    torch.tensor([[0.0, 1.0], [float("inf"), 0.0]]),
                                    torch.tensor([[0.0, float("-inf")]])])
def test_bias_shift_refuses_logits_that_are_not_a_finite_table(logits):
    with pytest.raises(ValueError, match=r"^logits must be a non-empty \(N, classes\) tensor "
                                         r"of finite values$"):
        digits.choose_bias_shift(logits, 1, 0.5)


def test_apply_bias_shift_uses_the_last_linear_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 5), nn.ReLU(),
                          nn.Linear(5, 3), nn.Identity())
    x = torch.randn(6, 4)
    with torch.no_grad():
        before = model(x)
    for digit, shift in ((2, 1.5), (0, -0.75)):
        shifted = digits.apply_bias_shift(model, digit, shift)
        assert shifted is not model
        with torch.no_grad():
            delta = shifted(x) - before
        expected = torch.zeros(6, 3)
        expected[:, digit] = shift
        torch.testing.assert_close(delta, expected)
        for hidden in (0, 2):  # the hidden layers are left alone
            torch.testing.assert_close(shifted[hidden].bias, model[hidden].bias)
    with torch.no_grad():
        torch.testing.assert_close(model(x), before)  # the original is left alone


def test_confusion_matrix_defaults_to_ten_classes():
    y = torch.tensor([9, 9, 0, 3, 3, 3])
    pred = torch.tensor([9, 1, 0, 3, 9, 3])
    conf = digits.confusion_matrix(pred, y)
    assert conf.shape == (10, 10) and int(conf.sum()) == 6
    expected = torch.zeros(10, 10, dtype=torch.long)
    for i, j, c in ((9, 9, 1), (9, 1, 1), (0, 0, 1), (3, 3, 2), (3, 9, 1)):
        expected[i, j] = c
    assert torch.equal(conf, expected)  # rows are the true class, columns the prediction


def test_confusion_matrix_counts_low_classes_without_padding():
    conf = digits.confusion_matrix(torch.tensor([1, 0]), torch.tensor([0, 0]), 3)
    assert conf.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 0]]
    conf = digits.confusion_matrix(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 2.0]), 4)
    assert conf.shape == (4, 4) and conf[1, 0] == 1 and conf[2, 2] == 1 and conf.sum() == 2


def test_per_class_accuracy_divides_by_the_true_class_count():
    conf = torch.tensor([[3, 1, 0], [0, 0, 0], [4, 0, 1]])
    acc = digits.per_class_accuracy(conf)
    assert acc[0] == 0.75 and acc[2] == 0.2
    assert math.isnan(acc[1])  # no images of class 1
    assert all(type(a) is float for a in acc)


def test_evaluate_by_hand():
    # 4 classes, 6 images; digit 3 appears twice, once right
    labels = torch.tensor([3, 0, 3, 1, 1, 2])
    pred = torch.tensor([3, 0, 1, 1, 0, 0])
    logits = F.one_hot(pred, 4).float() * 2 - 0.5
    m = digits.evaluate(logits, labels, 3)
    assert m["test_acc"] == pytest.approx(3 / 6)
    assert m["others_acc"] == pytest.approx(2 / 4)
    assert m["digit_acc"] == 0.5
    assert m["per_class_acc"] == [1.0, 0.5, 0.0, 0.5]
    assert m["confusion"] == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]]
    m0 = digits.evaluate(logits, labels, 0)
    assert (m0["test_acc"], m0["others_acc"], m0["digit_acc"]) == \
        pytest.approx((0.5, 2 / 5, 1.0))
