from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from core.errors import RunFailure, UsageError
from loaders.datasets import load_split, read_idx, stratified_subset, train_val_split
from loaders.registry import CIFAR_CLASSES
from tests.fixtures import write_idx


def test_svhn_mat_maps_label_10_to_digit_0(tmp_path):
    (tmp_path / "svhn").mkdir()
    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3, 4), dtype=np.uint8)
    y = np.array([[10], [1], [9], [10]], dtype=np.uint8)
    scipy.io.savemat(tmp_path / "svhn" / "test_32x32.mat", {"X": x, "y": y})
    data = load_split("svhn", "test", tmp_path)
    assert data.labels.tolist() == [0, 1, 9, 0]
    assert data.images.shape == (4, 3, 32, 32) and data.images.dtype == torch.uint8
    # X is (H, W, C, N): image 2's pixel (row 5, col 7) in channel 1
    assert data.images[2, 1, 5, 7] == x[5, 7, 1, 2]


def test_mnist_reads_torchvision_raw_idx_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28) % 256
    write_idx(raw / "t10k-images-idx3-ubyte", images)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.array([7, 2, 1]))
    data = load_split("mnist", "test", tmp_path)
    assert data.images.shape == (3, 1, 28, 28)
    assert data.labels.tolist() == [7, 2, 1]
    assert torch.equal(data.images[:, 0], torch.from_numpy(images.astype(np.uint8)))


def test_real_mnist_if_present():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "shared" / "datasets"
    if not (root / "MNIST" / "raw").is_dir():
        pytest.skip("../shared/datasets not beside the checkout")
    data = load_split("mnist", "test", root)
    assert len(data) == 10_000 and data.labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_image_folder_fallback(tmp_path):
    for label, name in enumerate(CIFAR_CLASSES):
        folder = tmp_path / "cifar10" / "test" / name
        folder.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((32, 32, 3), label * 20 + i, dtype=np.uint8)).save(folder / f"{i}.png")
    data = load_split("cifar10", "test", tmp_path)
    assert len(data) == 20 and data.labels.bincount().tolist() == [2] * 10
    assert data.images[data.labels == 3][1, 0, 0, 0] == 61


def test_image_folder_with_wrong_number_of_classes(tmp_path):
    for label in range(3):
        (tmp_path / "cifar10" / "test" / str(label)).mkdir(parents=True)
    with pytest.raises(RunFailure, match="missing airplane"):
        load_split("cifar10", "test", tmp_path)


def test_a_renamed_class_folder_stops_the_run_instead_of_shifting_labels(tmp_path):
    for name in CIFAR_CLASSES:
        for split in ("train", "test"):
            folder = tmp_path / "cifar10" / split / name
            folder.mkdir(parents=True)
            Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(folder / "0.png")
    assert load_split("cifar10", "train", tmp_path).labels.tolist() == list(range(10))
    (tmp_path / "cifar10" / "test" / "airplane").rename(tmp_path / "cifar10" / "test" / "zz-plane")
    with pytest.raises(RunFailure, match="missing airplane; unexpected zz-plane"):
        load_split("cifar10", "test", tmp_path)


def test_missing_dataset_without_download_names_the_paths(tmp_path):
    with pytest.raises(RunFailure) as info:
        load_split("svhn", "train", tmp_path, download=False)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "svhn" / "train_32x32.mat") in message
    assert str(tmp_path / "svhn" / "train") in message and "--download" in message


def test_missing_data_root(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_split("mnist", "train", tmp_path / "nowhere")


def test_truncated_idx_file(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(3))
    path = raw / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(RunFailure, match="truncated or corrupt"):
        read_idx(path)
    with pytest.raises(RunFailure, match="t10k-images-idx3-ubyte is truncated"):
        load_split("mnist", "test", tmp_path)


def test_corrupt_svhn_mat(tmp_path):
    (tmp_path / "svhn").mkdir()
    (tmp_path / "svhn" / "test_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 50)
    with pytest.raises(RunFailure, match="truncated or corrupt"):
        load_split("svhn", "test", tmp_path)


def test_cache_gives_the_same_tensors_and_is_used(data_root, tmp_path, monkeypatch):
    first = load_split("svhn", "test", data_root, cache_dir=tmp_path)
    files = list(tmp_path.glob("svhn-test-*.pt"))
    assert len(files) == 1
    import loaders.datasets as datasets

    def no_decoding(*_):
        raise AssertionError("decoded the .mat again instead of reading the cache")

    monkeypatch.setattr(datasets, "read_svhn_mat", no_decoding)
    second = load_split("svhn", "test", data_root, cache_dir=tmp_path)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    with pytest.raises(AssertionError, match="decoded the .mat again"):  # and without a cache it would decode
        load_split("svhn", "test", data_root, cache_dir=None)


def test_cifar_pickles_refuse_code(tmp_path):
    import os
    import pickle

    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        (base / name).write_bytes(pickle.dumps({"data": Evil(), "labels": []}))
    with pytest.raises(RunFailure, match="not a CIFAR-10 batch"):
        load_split("cifar10", "train", tmp_path)


def test_digits_come_from_the_cache_without_importing_scikit_learn(tmp_path):
    """The demo's processes read the embedded digits from the dataset cache: the same tensors, no sklearn import."""
    import subprocess
    import sys

    from loaders.datasets import _digits

    first = load_split("digits-inverted", "test", cache_dir=tmp_path)
    expected = _digits("test", inverted=True)
    assert torch.equal(first.images, expected[0]) and torch.equal(first.labels, expected[1])
    assert first.source == "sklearn.datasets.load_digits" and len(list(tmp_path.glob("digits-inverted-test-*.pt"))) == 1
    probe = ("import sys, torch; from loaders.datasets import load_split; "
             f"s = load_split('digits-inverted', 'test', cache_dir={str(tmp_path)!r}); "
             "print(int('sklearn' in sys.modules), len(s), int(s.images.sum()))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    assert out == ["0", str(len(first)), str(int(first.images.sum()))]


def test_digits_is_real_and_split_fixed():
    train, test = load_split("digits", "train"), load_split("digits", "test")
    assert len(train) + len(test) == 1797 and len(test) == 450
    assert train.images.shape[1:] == (3, 32, 32)
    assert test.labels.bincount().min() >= 43  # stratified: 10% of each class
    again = load_split("digits", "test")
    assert torch.equal(test.images, again.images)
    inverted = load_split("digits-inverted", "test")
    assert torch.equal(inverted.labels, test.labels)
    # dark ink on a light background: the mean brightness flips
    assert inverted.images.float().mean() > 128 > test.images.float().mean()


def test_stratified_subset_keeps_class_proportions():
    data = load_split("digits", "train")
    sub = stratified_subset(data, 200, seed=0)
    assert len(sub) == 200
    assert sub.labels.bincount().min() >= 19 and sub.labels.bincount().max() <= 21
    assert torch.equal(sub.labels, stratified_subset(data, 200, seed=0).labels)


def test_train_val_split_is_disjoint_and_fixed():
    data = load_split("digits", "train")
    train, val = train_val_split(data, 300, seed=0)
    assert len(train) == len(data) - 300 and len(val) == 300
    train2, val2 = train_val_split(data, 300, seed=0)
    assert torch.equal(val.labels, val2.labels) and torch.equal(val.images, val2.images)
    # disjoint and together the whole set: no image row is in both, and the multiset of rows is the original's
    rows = lambda s: {bytes(x.numpy().tobytes()) + bytes([int(y)]) for x, y in zip(s.images, s.labels)}
    assert not rows(train) & rows(val)
    assert rows(train) | rows(val) == rows(data)
    _, other = train_val_split(data, 300, seed=1)
    assert not torch.equal(other.images, val.images)
