"""CIFAR-10 loading on a tiny folder in the genuine pickle format, and crop+flip."""

import json
import pickle

import numpy as np
import pytest
import torch

from kdlib import data, training


def write_batch(path, images, labels):
    """One file as the python version of CIFAR-10 stores it (pickled with byte-string keys)."""
    batch = {b"batch_label": path.name.encode(), b"labels": list(labels),
             b"data": images.reshape(len(images), 3072),
             b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
    path.write_bytes(pickle.dumps(batch, protocol=2))


@pytest.fixture
def cifar_root(tmp_path):
    folder = tmp_path / data.CIFAR10_FOLDER
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):  # two images per training file; labels 0..9 across the files
        images = rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
        write_batch(folder / f"data_batch_{i}", images, [2 * i - 2, 2 * i - 1])
    test = np.zeros((3, 3, 32, 32), dtype=np.uint8)
    test[0, 0], test[0, 1], test[0, 2] = 10, 20, 30  # red, green, blue planes
    test[0, 0, 1, 2] = 99  # red, row 1, column 2
    write_batch(folder / "test_batch", test, [7, 3, 5])
    meta = {b"num_cases_per_batch": 2, b"label_names": [c.encode() for c in data.CIFAR10_CLASSES],
            b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    stand_in(folder)
    return tmp_path


def stand_in(folder):
    """Mark `folder` as a stand-in: the MD5 of each of its files, as write_cifar10_folder does."""
    (folder / data.STAND_IN_MANIFEST).write_text(json.dumps(
        {name: data.md5(folder / name) for name in data.CIFAR10_MD5}))


def test_folder_reads_with_shapes_order_and_layout(cifar_root):
    got = data.load_cifar10(cifar_root, download=False, verbose=False)
    assert got.train.images.shape == (10, 3, 32, 32) and got.train.images.dtype == torch.uint8
    assert got.test.images.shape == (3, 3, 32, 32) and got.train.labels.dtype == torch.int64
    assert got.train.labels.tolist() == list(range(10))  # data_batch_1..5, in order
    assert got.test.labels.tolist() == [7, 3, 5]
    # the 3072-vector is the red, green and blue planes, each row-major
    row = pickle.loads((cifar_root / data.CIFAR10_FOLDER / "test_batch").read_bytes())[b"data"][0]
    assert row[0] == 10 and row[1024] == 20 and row[2048] == 30 and row[32 + 2] == 99
    img = got.test.images[0]
    assert img[0, 1, 2] == 99 and img[0, 0, 0] == 10 and img[1].unique().tolist() == [20]
    assert img[2].unique().tolist() == [30]
    assert got.source.startswith("stand-in folder") and got.source.endswith("(MD5-checked)")


def test_first_load_is_cached(cifar_root):
    first = data.load_cifar10(cifar_root, download=False, verbose=False)
    for f in (cifar_root / data.CIFAR10_FOLDER).iterdir():
        f.unlink()
    again = data.load_cifar10(cifar_root, download=False, verbose=False)
    assert again.source.endswith("(via local cache)")
    assert torch.equal(again.train.images, first.train.images)


def test_a_damaged_or_foreign_file_is_refused_by_name_before_any_use(cifar_root, monkeypatch):
    folder = cifar_root / data.CIFAR10_FOLDER
    monkeypatch.setattr(data, "_cifar10_torchvision", lambda root: pytest.fail("no fallback"))
    batch = folder / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-1] + b"\x00")  # one byte changed
    with pytest.raises(data.DataIntegrityError, match="data_batch_3 has MD5") as err:
        data.load_cifar10(cifar_root, download=True, verbose=False)
    assert "Delete" in str(err.value) and not (cifar_root / "cifar10.pt").exists()
    (folder / data.STAND_IN_MANIFEST).unlink()  # no list of its own: CIFAR-10's MD5s apply
    with pytest.raises(data.DataIntegrityError, match="not CIFAR-10's c99cafc1"):
        data.load_cifar10(cifar_root, download=False, verbose=False)


def test_the_official_md5s_are_cifar10s():
    assert data.CIFAR10_MD5["data_batch_1"] == "c99cafc152244af753f735de768cd75f"
    assert data.CIFAR10_MD5["test_batch"] == "40351d587109b95175f43aff81a1287e"
    assert len(data.CIFAR10_MD5) == 6 and data.md5.__name__ == "md5"


def test_a_written_stand_in_reads_back_checked(tmp_path):
    g = torch.Generator().manual_seed(0)
    splits = [data.Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
                         torch.randint(0, 10, (n,), generator=g)) for n in (10, 4)]
    data.write_cifar10_folder(tmp_path / data.CIFAR10_FOLDER, *splits)
    got = data.load_cifar10(tmp_path, download=False, verbose=False)
    assert torch.equal(got.train.images, splits[0].images)
    assert got.source.startswith("stand-in folder")


def test_a_changed_cache_is_refused(cifar_root):
    data.load_cifar10(cifar_root, download=False, verbose=False)
    cache = cifar_root / "cifar10.pt"
    blob = torch.load(cache, weights_only=True)
    blob["train"][0][0, 0, 0, 0] ^= 1  # one pixel's lowest bit
    torch.save(blob, cache)
    with pytest.raises(data.DataIntegrityError, match="cifar10.pt holds tensors with sha256"):
        data.load_cifar10(cifar_root, download=False, verbose=False)


def test_mnists_cache_is_held_to_the_known_hash_even_with_a_recomputed_one(tmp_path):
    from kdlib import paths

    real = paths.data_dir() / "mnist.pt"
    if not real.is_file():
        pytest.skip("no MNIST cache: run `make data`")
    good = data.load_images("mnist", verbose=False)
    assert data.tensors_sha256(good.train, good.test) == data.TENSORS_SHA256["mnist"]
    blob = torch.load(real, weights_only=True)
    blob["test"][1][0] = (blob["test"][1][0] + 1) % 10  # one label changed
    blob["sha256"] = data.tensors_sha256(data.Split(*blob["train"]), data.Split(*blob["test"]))
    torch.save(blob, tmp_path / "mnist.pt")
    with pytest.raises(data.DataIntegrityError, match="the known mnist"):
        data.load_images("mnist", root=tmp_path, verbose=False)


def test_missing_folder_says_where_to_put_it(tmp_path):
    with pytest.raises(data.DatasetUnavailableError) as err:
        data.load_cifar10(tmp_path, download=False, verbose=False)
    msg = str(err.value)
    assert f"{tmp_path}/{data.CIFAR10_FOLDER}" in msg and "torchvision downloads it" in msg


def test_failed_download_is_reported(tmp_path, monkeypatch):
    def offline(root):
        raise OSError("no network")

    monkeypatch.setattr(data, "_cifar10_torchvision", offline)
    with pytest.raises(data.DatasetUnavailableError, match="torchvision download: OSError: no net"):
        data.load_cifar10(tmp_path, download=True, verbose=False)


def candidates(img, pad):
    """Every crop of the zero-padded image, and its mirror image."""
    h, w = img.shape[-2:]
    padded = torch.nn.functional.pad(img, (pad,) * 4)
    crops = [padded[..., r:r + h, c:c + w] for r in range(2 * pad + 1) for c in range(2 * pad + 1)]
    return crops, [c.flip(-1) for c in crops]


def test_crop_flip_gives_a_crop_or_its_mirror():
    img = torch.arange(1, 3 * 6 * 6 + 1, dtype=torch.float32).view(3, 6, 6)  # no zeros, no symmetry
    x = img.expand(64, 3, 6, 6).contiguous()
    out = data.random_crop_flip(x, 2, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    plain, mirrored = candidates(img, 2)
    kinds = []
    for o in out:
        hits = [i for i, c in enumerate(plain + mirrored) if torch.equal(o, c)]
        assert len(hits) == 1
        kinds.append(hits[0])
    assert len(set(kinds)) > 10  # offsets vary
    assert any(k < 25 for k in kinds) and any(k >= 25 for k in kinds)  # both flips occur


def test_crop_flip_without_padding_only_flips_and_keeps_uint8():
    x = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8)
    out = data.random_crop_flip(x, 0, generator=torch.Generator().manual_seed(1))
    assert out.dtype == torch.uint8
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x, strict=True)])
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, x, strict=True)])
    assert torch.all(flipped | same) and flipped.any() and same.any()


def test_crop_flip_is_reproducible():
    x = torch.rand(16, 3, 32, 32)
    a = data.random_crop_flip(x, generator=torch.Generator().manual_seed(3))
    b = data.random_crop_flip(x, generator=torch.Generator().manual_seed(3))
    c = data.random_crop_flip(x, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_recipe_crop_flip_is_applied_and_off_by_default():
    assert training.Recipe(epochs=1).as_dict()["crop_flip"] is False
    assert training.Recipe(epochs=1, crop_flip=True).as_dict()["crop_flip"] is True
    seen = []

    def objective(model, x, y):
        seen.append(x.clone())
        return {"loss": model(x).sum() * 0}

    x = torch.rand(8, 3, 8, 8) + 1  # nonzero, so the zero padding shows
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2))
    for crop_flip in (False, True):
        training.train(model, objective, x, torch.zeros(8, dtype=torch.long),
                       training.Recipe(epochs=1, batch_size=8, crop_flip=crop_flip), seed=0,
                       progress=False)
    assert bool((seen[0] > 0).all()) and bool((seen[1] == 0).any())


def test_fashion_mnist_from_debian_has_the_known_hash(tmp_path):
    if not data.FASHION_DEBIAN_DIR.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    got = data.load_images("fashion-mnist", root=tmp_path, download=False, verbose=False)
    assert data.tensors_sha256(got.train, got.test) == data.TENSORS_SHA256["fashion-mnist"]
    again = data.load_images("fashion-mnist", root=tmp_path, download=False, verbose=False)
    assert again.source.endswith("(via local cache)")  # the cache passes its check
