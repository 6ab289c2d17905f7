"""Datasets as uint8 tensors: a registry of sources, tried in order, and a decode-once cache.

For every file-based dataset the sources are, in order:
  1. the official files under the data root
     (svhn: <root>/svhn/{train,test}_32x32.mat or <root>/{train,test}_32x32.mat;
      mnist: <root>/MNIST/raw/*-idx?-ubyte; cifar10: <root>/cifar-10-batches-py/;
      usps: <root>/usps/usps.bz2 and usps.t.bz2 (torchvision's files) or <root>/usps*.bz2;
      mnistm: <root>/mnist_m/mnist_m_{train,test}/*.png with mnist_m/mnist_m_{train,test}_labels.txt;
      syn: <root>/syn/synth_{train,test}_32x32.mat or <root>/synth_*_32x32.mat, SVHN's .mat layout),
  2. an ImageFolder tree <root>/<name>/{train,test}/<class>/ (class folders named as the classes),
  3. a torchvision download, when downloads are allowed (svhn, mnist, cifar10, usps; torchvision has
     no loader for mnistm and syn, so the error says where users get them).
When none works, the error names every path that was looked in. There is no fallback to fake data.

`digits` is embedded: scikit-learn's 1,797 real 8x8 handwritten digits, upsampled to 32x32 RGB,
with a fixed stratified split. `digits-inverted` is the same split drawn dark-on-light in random
colours, a labelled stand-in for an unseen domain (used by the demo profile).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import DataMissing, DataRootMissing, DownloadFailed, RunFailure, UsageError
from core.io import LockBusy, atomic_write, clean_partial, exclusive, load_torch
from loaders.registry import DATASETS, EMBEDDED, NUM_CLASSES, SPLITS, WHERE_TO_GET, class_names

CACHE_VERSION = 2  # 2: labels and class folders checked before an entry is written


@dataclass
class ImageSet:
    images: torch.Tensor  # (N, C, H, W) uint8, C = 1 or 3
    labels: torch.Tensor  # (N,) int64 in 0..9
    name: str
    split: str
    source: str           # where it was read from

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: torch.Tensor, split: str | None = None) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index], self.name, split or self.split, self.source)


# ---------------------------------------------------------------- readers of the official formats

def read_idx(path: Path) -> torch.Tensor:
    """An uncompressed idx file (MNIST's format): magic 0x0000 08 <ndim>, big-endian dims, uint8 data."""
    data = path.read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise RunFailure(f"{path} is not a uint8 idx file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise RunFailure(f"{path} is truncated (header cut short)")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if not dims or 0 in dims:
        raise RunFailure(f"{path} holds no images (shape {dims})")
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise RunFailure(f"{path} is truncated or corrupt ({len(data)} bytes, expected {expected} for shape {dims})")
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).view(*dims)


def read_svhn_mat(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """SVHN's {train,test}_32x32.mat: X (32, 32, 3, N) uint8, y (N, 1) in 1..10, where 10 is the digit 0.
    SynDigits' synth_{train,test}_32x32.mat has the same layout, with labels 0..9 or SVHN's 1..10. The
    convention is read from the file: labels 1..10 map 10 to the digit 0 (SVHN's own rule); 0..9 stay; a file
    holding both 0 and 10, or anything outside 0..10, or images that are not uint8, is refused."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path, variable_names=["X", "y"])
        x, y = mat["X"], mat["y"]
    except Exception as err:  # scipy raises ValueError, OSError, MatReadError, KeyError...
        raise RunFailure(f"{path} is truncated or corrupt, not an SVHN-format .mat file ({type(err).__name__}: {err})") from err
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or y.reshape(-1).shape[0] != x.shape[3]:
        raise RunFailure(f"{path} has X of shape {x.shape} and y of shape {y.shape}; expected (32, 32, 3, N) and (N, 1)")
    if x.dtype != np.uint8:
        raise RunFailure(f"{path} holds images of dtype {x.dtype}; the SVHN .mat format stores uint8 pixels 0..255")
    raw = y.reshape(-1)
    if not np.issubdtype(raw.dtype, np.integer) and not np.all(raw == np.round(raw)):
        raise RunFailure(f"{path} holds non-integer labels (dtype {raw.dtype})")
    raw = raw.astype(np.int64)
    bad = np.nonzero((raw < 0) | (raw > 10))[0]
    if len(bad):
        raise RunFailure(f"{path} holds label {raw[bad[0]]} at index {bad[0]} ({len(bad)} such); SVHN-format labels "
                         "are 1..10 (10 is the digit 0) or 0..9")
    if (raw == 0).any() and (raw == 10).any():
        raise RunFailure(f"{path} holds both label 0 and label 10: neither 1..10 (SVHN's, 10 = the digit 0) nor 0..9")
    labels = torch.from_numpy(np.where(raw == 10, 0, raw))  # SVHN's rule: label 10 is the digit 0
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))
    return images, labels


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's python batches but nothing that could run code: numpy arrays and builtins only."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def read_cifar_batches(files: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for path in files:
        try:
            with open(path, "rb") as fh:
                batch = _ArrayUnpickler(fh, encoding="latin1").load()
            xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch["labels"], dtype=np.int64))
        except Exception as err:
            raise RunFailure(f"{path} is truncated or corrupt, not a CIFAR-10 batch ({type(err).__name__})") from err
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def read_image_folder(folder: Path, expected: tuple[str, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """<folder>/<class>/*.{png,jpg,...}; class folders sorted give labels 0..9. With `expected` (the
    dataset's known classes, in label order), the folders must be exactly those: a renamed or missing
    class folder would shift every label after it, silently, so it stops the run instead."""
    from PIL import Image

    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    if expected is not None and classes != sorted(expected):
        missing, extra = sorted(set(expected) - set(classes)), sorted(set(classes) - set(expected))
        raise RunFailure(f"image folder {folder} has class folders that differ from the known classes "
                         f"({', '.join(expected)}): " + "; ".join(filter(None, [
                             f"missing {', '.join(missing[:5])}" if missing else "",
                             f"unexpected {', '.join(extra[:5])}" if extra else ""]))
                         + "; labels would not match across splits")
    if expected is not None and tuple(classes) != tuple(expected):
        raise RunFailure(f"image folder {folder}: class folders sort as {', '.join(classes)}, not in the "
                         f"dataset's label order ({', '.join(expected)})")
    if len(classes) != NUM_CLASSES:
        raise RunFailure(f"image folder {folder} has {len(classes)} class folders, expected {NUM_CLASSES}: "
                         f"{', '.join(classes[:12])}")
    images, labels = [], []
    for label, cls in enumerate(classes):
        for path in sorted((folder / cls).iterdir()):
            if path.suffix.lower() not in {".png", ".jpg", ".jpeg", ".bmp", ".webp"}:
                continue
            try:
                with Image.open(path) as im:
                    arr = np.asarray(im.convert("RGB"))
            except Exception as err:
                raise RunFailure(f"cannot decode image {path} ({type(err).__name__})") from err
            images.append(arr)
            labels.append(label)
    if not images:
        raise RunFailure(f"image folder {folder} holds no images")
    shapes = {a.shape for a in images}
    if len(shapes) != 1:
        raise RunFailure(f"images in {folder} differ in size: {sorted(shapes)[:3]}")
    stacked = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return stacked, torch.tensor(labels, dtype=torch.int64)


def _labels_checked(labels: torch.Tensor, source) -> torch.Tensor:
    """Labels must be 0..9: a bad one is named here, not when a batch happens to reach it."""
    bad = ((labels < 0) | (labels >= NUM_CLASSES)).nonzero()
    if len(bad):
        i = int(bad[0])
        raise RunFailure(f"{source} holds label {int(labels[i])} at index {i} ({len(bad)} such); "
                         f"labels must be 0..{NUM_CLASSES - 1}")
    return labels


def read_usps(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's USPS file (usps.bz2 / usps.t.bz2: libsvm lines, values in [-1, 1], labels 1..10),
    read by torchvision.datasets.USPS itself: (N, 1, 16, 16) uint8 and labels 0..9."""
    import torchvision.datasets as tvd

    try:
        ds = tvd.USPS(str(path.parent), train=path.name == "usps.bz2", download=False)
    except Exception as err:  # bz2 raises OSError/EOFError, numpy ValueError on a ragged line...
        raise RunFailure(f"{path} is truncated or corrupt, not a USPS file ({type(err).__name__}: {err})") from err
    images = torch.from_numpy(np.ascontiguousarray(ds.data)).unsqueeze(1)
    if images.ndim != 4 or images.shape[-2:] != (16, 16):
        raise RunFailure(f"{path} holds images of shape {tuple(images.shape)}, expected 16x16")
    _usps_ranges(path)  # torchvision casts (v + 1) / 2 * 255 to uint8, which wraps values outside [-1, 1]
    return images, _labels_checked(torch.tensor(ds.targets, dtype=torch.int64), path)


def _usps_ranges(path: Path) -> None:
    """Every pixel value of a USPS libsvm file in [-1, 1] (a value outside would wrap around in uint8)."""
    import bz2

    with bz2.open(path, "rt") as lines:
        for number, line in enumerate(lines, start=1):
            values = [float(v.split(":")[-1]) for v in line.split()[1:]]
            if values and (min(values) < -1 - 1e-6 or max(values) > 1 + 1e-6):
                bad = min(values) if min(values) < -1 - 1e-6 else max(values)
                raise RunFailure(f"{path} line {number} holds the pixel value {bad:g}; USPS values are in [-1, 1]")


def read_mnistm(folder: Path, labels_file: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST-M as distributed: <folder>/00000000.png ... (32x32 RGB) and a labels file whose lines read
    `00000000.png 7`."""
    from PIL import Image

    images, labels = [], []
    for number, line in enumerate(labels_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise RunFailure(f"{labels_file} line {number} is not `<file> <label>`: {line[:60]!r}")
        try:
            with Image.open(folder / parts[0]) as im:
                images.append(np.asarray(im.convert("RGB")))
        except Exception as err:
            raise RunFailure(f"cannot decode image {folder / parts[0]} named in {labels_file} line {number} "
                             f"({type(err).__name__})") from err
        labels.append(int(parts[1]))
        if not 0 <= labels[-1] < NUM_CLASSES:
            raise RunFailure(f"{labels_file} line {number} gives label {labels[-1]}; labels must be 0..{NUM_CLASSES - 1}")
    if not images:
        raise RunFailure(f"{labels_file} names no images")
    if {a.shape for a in images} != {(32, 32, 3)}:
        raise RunFailure(f"images in {folder} are not all 32x32 RGB: {sorted({a.shape for a in images})[:3]}")
    return (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
            torch.tensor(labels, dtype=torch.int64))


# ---------------------------------------------------------------- sources per dataset

def _svhn_files(root: Path, split: str) -> list[Path]:
    return [root / "svhn" / f"{split}_32x32.mat", root / f"{split}_32x32.mat"]


_MNIST_PREFIX = {"train": "train", "test": "t10k"}


def _mnist_files(root: Path, split: str) -> tuple[Path, Path]:
    raw = root / "MNIST" / "raw"
    p = _MNIST_PREFIX[split]
    return raw / f"{p}-images-idx3-ubyte", raw / f"{p}-labels-idx1-ubyte"


def _cifar_files(root: Path, split: str) -> list[Path]:
    base = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    return [base / n for n in names]


def _first(files: list[Path], read: Callable) -> tuple[list[Path], Callable | None]:
    found = next((f for f in files if f.is_file()), None)
    return files, (lambda: read(found)) if found else None


def _native(name: str, root: Path, split: str) -> tuple[list[Path], Callable | None]:
    """The files of the dataset's official layout, and a reader if they are all present."""
    if name == "svhn":
        return _first(_svhn_files(root, split), read_svhn_mat)
    if name == "syn":
        return _first([root / "syn" / f"synth_{split}_32x32.mat", root / f"synth_{split}_32x32.mat"], read_svhn_mat)
    if name == "usps":
        file = "usps.bz2" if split == "train" else "usps.t.bz2"
        return _first([root / "usps" / file, root / file], read_usps)
    if name == "mnistm":
        folder, labels = root / "mnist_m" / f"mnist_m_{split}", root / "mnist_m" / f"mnist_m_{split}_labels.txt"
        if folder.is_dir() and not labels.is_file():  # the images without their labels: say which file is missing
            def missing():
                raise RunFailure(f"MNIST-M's images are in {folder} but its labels file {labels} is missing")
            return [folder, labels], missing
        return [folder, labels], (lambda: read_mnistm(folder, labels)) if folder.is_dir() and labels.is_file() else None
    if name == "mnist":
        images, labels = _mnist_files(root, split)
        ok = images.is_file() and labels.is_file()

        def read():
            x, y = read_idx(images), read_idx(labels)
            if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
                raise RunFailure(f"{images} and {labels} disagree: {tuple(x.shape)} images, {tuple(y.shape)} labels")
            return x.unsqueeze(1).contiguous(), _labels_checked(y.long(), labels)
        return [images, labels], read if ok else None
    files = _cifar_files(root, split)
    return [files[0].parent], (lambda: read_cifar_batches(files)) if all(f.is_file() for f in files) else None


def _download(name: str, root: Path, split: str) -> None:
    import torchvision.datasets as tvd

    if name in WHERE_TO_GET:
        return  # torchvision has no loader for it: the not-found error says where users get it
    try:
        if name == "svhn":
            tvd.SVHN(str(root / "svhn"), split=split, download=True)
        elif name == "usps":
            tvd.USPS(str(root / "usps"), train=split == "train", download=True)
        elif name == "mnist":
            tvd.MNIST(str(root), train=split == "train", download=True)
        else:
            tvd.CIFAR10(str(root), train=split == "train", download=True)
    except Exception as err:
        raise DownloadFailed(f"download of {name} {split} into {root} failed ({type(err).__name__}: {err})") from err


def _digits(split: str, inverted: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=450, stratify=y, random_state=0)
    idx = np.sort(train_idx if split == "train" else test_idx)
    ink = torch.from_numpy(x[idx] / 16.0).float().view(-1, 1, 8, 8)
    ink = F.interpolate(ink, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1)
    if inverted:
        # Dark ink on a light background, both in random colours (fixed seed): a shifted domain.
        g = torch.Generator().manual_seed(1234 + (split == "test"))
        background = 0.55 + 0.45 * torch.rand(len(idx), 3, 1, 1, generator=g)
        foreground = 0.35 * torch.rand(len(idx), 3, 1, 1, generator=g)
        images = background * (1 - ink) + foreground * ink
    else:
        images = ink.expand(-1, 3, -1, -1)
    return (images * 255).round().to(torch.uint8).contiguous(), torch.from_numpy(y[idx]).long()


def _embedded(name: str, split: str, cache_dir) -> ImageSet:
    """scikit-learn's digits, through the dataset cache keyed on scikit-learn's own file: importing scikit-learn
    takes 1.5-3 s per process here, as long as a demo section trains, and the demo starts about 40 processes."""
    def decode():
        return _digits(split, inverted=name == "digits-inverted")

    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    source = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if cache_dir is None or source is None or not source.is_file():
        return ImageSet(*decode(), name, split, "sklearn.datasets.load_digits")
    return dataclasses.replace(_cached(Path(cache_dir), name, split, [source], decode),
                               source="sklearn.datasets.load_digits")


# ---------------------------------------------------------------- the public entry point

def _cache_key(name: str, split: str, sources: list[Path]) -> str:
    h = hashlib.sha1(f"v{CACHE_VERSION}:{name}:{split}".encode())
    for path in sources:
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file():
                st = f.stat()
                h.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _decoded(decode: Callable, sources: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = decode()
    if len(images) == 0:
        raise RunFailure(f"{sources[0]} holds no images")
    return images, _labels_checked(labels, sources[0])


def _valid_cache(blob) -> str | None:
    """Why a loaded cache entry cannot be used, or None if it can."""
    if not isinstance(blob, dict) or not {"images", "labels", "source"} <= set(blob):
        return f"keys {sorted(blob) if isinstance(blob, dict) else type(blob).__name__}"
    images, labels = blob["images"], blob["labels"]
    if not (isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.ndim == 4
            and isinstance(labels, torch.Tensor) and labels.dtype == torch.int64 and labels.ndim == 1):
        return "tensors of the wrong type or shape"
    if len(images) != len(labels) or len(labels) == 0:
        return f"{len(images)} images but {len(labels)} labels"
    if int(labels.min()) < 0 or int(labels.max()) >= NUM_CLASSES:
        return "labels outside 0..9"
    return None


def _cached(cache_dir: Path | None, name: str, split: str, sources: list[Path], decode: Callable) -> ImageSet:
    """Decode once into a uint8 tensor file; later runs load it in a fraction of a second. An entry that
    does not load, or loads with the wrong contents, is rebuilt from the source."""
    if cache_dir is None:
        return ImageSet(*_decoded(decode, sources), name, split, str(sources[0]))
    path = Path(cache_dir) / f"{name}-{split}-{_cache_key(name, split, sources)}.pt"
    if path.is_file():
        try:
            blob = load_torch(path, what="dataset cache")
            problem = _valid_cache(blob)
        except RunFailure as err:
            problem = str(err)
        if problem is None:
            return ImageSet(blob["images"], blob["labels"], name, split, blob["source"])
        print(f"warning: rebuilding the dataset cache {path} ({problem})", file=sys.stderr)
    images, labels = _decoded(decode, sources)
    try:
        with exclusive(path.with_name(path.name + ".lock"), f"dataset cache {path}"):
            clean_partial(path)
            atomic_write(path, lambda tmp: torch.save({"images": images, "labels": labels,
                                                       "source": str(sources[0])}, tmp))
    except LockBusy:
        pass  # another process is writing this entry right now: use what was decoded, leave the cache to it
    return ImageSet(images, labels, name, split, str(sources[0]))


def load_split(name: str, split: str, root: str | os.PathLike = "data", *, download: bool = False,
               cache_dir: str | os.PathLike | None = None) -> ImageSet:
    """One split of one dataset as uint8 tensors; see the module docstring for where it looks."""
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if name in EMBEDDED:
        return _embedded(name, split, cache_dir)
    root = Path(root)
    if not root.is_dir() and not download:
        raise DataRootMissing(f"data root {root} does not exist (looked for {name} {split} there; "
                         "pass --data-root or --download)")
    files, reader = _native(name, root, split)
    if reader is not None:
        return _cached(cache_dir, name, split, files, reader)
    folder = root / name / split
    if folder.is_dir():
        return _cached(cache_dir, name, split, [folder], lambda: read_image_folder(folder, class_names(name)))
    if download:
        _download(name, root, split)
        files, reader = _native(name, root, split)
        if reader is not None:
            return _cached(cache_dir, name, split, files, reader)
    looked = ", ".join(str(p) for p in [*files, folder])
    how = (f"; torchvision cannot download it: get {WHERE_TO_GET[name]}" if name in WHERE_TO_GET
           else "" if download else "; downloads are off (pass --download to fetch it)")
    raise DataMissing(f"{name} {split} not found; looked in {looked}{how}")


# ---------------------------------------------------------------- subsets and splits

def stratified_subset(data: ImageSet, n: int | None, seed: int) -> ImageSet:
    """n images with the class proportions of data (all of data when n is None or >= len)."""
    if n is None or n >= len(data):
        return data
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(data))
    labels = data.labels.numpy()
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    # scikit-learn stratifies only when both parts can hold every class; otherwise a seeded uniform draw
    stratify = labels if min(n, len(data) - n) >= NUM_CLASSES and counts[counts > 0].min() >= 2 else None
    keep, _ = train_test_split(idx, train_size=n, stratify=stratify, random_state=seed)
    return data.take(torch.from_numpy(np.sort(keep)))


def random_subset(data: ImageSet, n: int, seed: int) -> ImageSet:
    """n images drawn uniformly without replacement (the study's 800 random SVHN images)."""
    if n > len(data):
        raise UsageError(f"samples {n} is larger than {data.name} {data.split} ({len(data)} images)")
    g = torch.Generator().manual_seed(seed)
    return data.take(torch.randperm(len(data), generator=g)[:n].sort().values)


def train_val_split(data: ImageSet, val_size: int, seed: int) -> tuple[ImageSet, ImageSet]:
    """torch.utils.data.random_split into (train, val) with a fixed generator, as the study did."""
    if not 0 < val_size < len(data):
        raise UsageError(f"val-size {val_size} must be between 1 and {len(data) - 1}")
    from torch.utils.data import random_split

    train, val = random_split(range(len(data)), [len(data) - val_size, val_size],
                              generator=torch.Generator().manual_seed(seed))
    return data.take(torch.tensor(train.indices)), data.take(torch.tensor(val.indices), split="val")
