"""The DG digits benchmark's datasets, each on files written in its official format."""
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import DataMissing
from loaders.datasets import load_split
from tests.fixtures import _digits, write_mnistm, write_syn, write_usps


def test_usps_in_torchvisions_format(tmp_path):
    write_usps(tmp_path)
    for split in ("train", "test"):
        data = load_split("usps", split, tmp_path)
        x, y = _digits(split, 16)
        assert data.images.shape == (len(y), 1, 16, 16) and data.images.dtype == torch.uint8
        assert data.labels.tolist() == y.tolist()  # stored 1..10, read back 0..9
        assert (data.images.int() - torch.from_numpy(x).int()).abs().max() <= 1  # [-1, 1] -> 0..255


def test_the_real_usps_test_split(tmp_path):
    root = Path(__file__).resolve().parents[3] / "shared" / "datasets"
    if not (root / "usps" / "usps.t.bz2").is_file():
        pytest.skip("../shared/datasets not beside the checkout")
    data = load_split("usps", "test", root, cache_dir=tmp_path)
    assert len(data) == 2007 and data.images.shape[1:] == (1, 16, 16)
    assert data.labels.bincount().tolist() == [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]


def test_mnistm_in_its_distributed_layout(tmp_path):
    write_mnistm(tmp_path)
    data = load_split("mnistm", "test", tmp_path)
    _, y = _digits("test", 32)
    assert data.images.shape == (len(y), 3, 32, 32) and data.labels.tolist() == y.tolist()


def test_mnistm_missing_names_the_expected_paths_and_where_to_get_it(tmp_path):
    with pytest.raises(DataMissing, match="mnist_m/mnist_m_test_labels.txt.*Ganin"):
        load_split("mnistm", "test", tmp_path, download=True)  # torchvision has no loader: no download tried


def test_mnistm_labels_file_with_a_bad_line(tmp_path):
    write_mnistm(tmp_path)
    labels = tmp_path / "mnist_m" / "mnist_m_test_labels.txt"
    labels.write_text(labels.read_text().replace("00000003.png", "00000003.png x", 1))
    with pytest.raises(Exception, match="line 4 is not"):
        load_split("mnistm", "test", tmp_path)


def test_syndigits_in_svhns_mat_layout(tmp_path):
    write_syn(tmp_path)
    data = load_split("syn", "train", tmp_path)
    x, y = _digits("train", 32)
    assert data.labels.tolist() == y.tolist()
    assert torch.equal(data.images, torch.from_numpy(255 - x))


def test_an_optional_target_is_skipped_and_recorded(tmp_path, data_root):
    from experiments import resolve
    from runs import prepare_data

    cfg = resolve("dg-erm-digitnet", "smoke", eval_on=("mnist", "mnistm"), optional_eval=("mnistm",))
    _, evals, _ = prepare_data(cfg, data_root, None, False)
    assert set(evals) == {"mnist_val", "mnist_test", "mnistm_test"}  # present: evaluated (and the selection's val)
    only = tmp_path / "only-mnist"
    only.mkdir()
    (only / "MNIST").symlink_to(data_root / "MNIST", target_is_directory=True)
    _, evals, described = prepare_data(cfg, only, None, False)
    assert list(evals) == ["mnist_val", "mnist_test"]
    assert described["mnistm_test"]["size"] == 0 and "mnist_m" in described["mnistm_test"]["skipped"]
    cfg.optional_eval = ()  # a target that is not optional stops the run instead
    with pytest.raises(DataMissing):
        prepare_data(cfg, only, None, False)


def test_first_n_training_images_is_mnist_10k(data_root):
    from experiments import resolve
    from runs import prepare_data

    cfg = resolve("dg-erm-digitnet", "smoke")
    train, _, _ = prepare_data(cfg, data_root, None, False)
    full = load_split("mnist", "train", data_root)
    assert cfg.train_take == "first" and torch.equal(train.images, full.images[:cfg.train_size])
    assert np.array_equal(train.labels.numpy(), full.labels[:cfg.train_size].numpy())


# ---------------------------------------------------------------- readers validate ranges (issue 23)

def _syn_with(tmp_path, labels=None, images=None):
    import scipy.io

    write_syn(tmp_path)
    path = tmp_path / "syn" / "synth_train_32x32.mat"
    mat = scipy.io.loadmat(path)
    x, y = mat["X"], mat["y"].astype(np.int64)
    if labels is not None:
        y = labels(y)
    if images is not None:
        x = images(x)
    scipy.io.savemat(path, {"X": x, "y": y})
    return path


@pytest.mark.parametrize("edit,message", [
    (dict(labels=lambda y: np.where(np.arange(len(y))[:, None] == 3, 11, y)), "holds label 11 at index 3"),
    (dict(labels=lambda y: np.where(np.arange(len(y))[:, None] == 5, -1, y)), "holds label -1 at index 5"),
    (dict(labels=lambda y: np.where(y == 1, 10, y)), "both label 0 and label 10"),
    (dict(images=lambda x: x.astype(np.float32) / 255), "dtype float32"),
])
def test_a_syn_file_out_of_range_is_refused_not_taken_modulo_ten(tmp_path, edit, message):
    from core.errors import RunFailure

    _syn_with(tmp_path, **edit)
    with pytest.raises(RunFailure, match=message):
        load_split("syn", "train", tmp_path)


def test_svhns_label_ten_is_the_digit_zero(tmp_path):
    _syn_with(tmp_path, labels=lambda y: np.where(y == 0, 10, y))  # SVHN's convention: 1..10
    _, y = _digits("train", 32)
    assert load_split("syn", "train", tmp_path).labels.tolist() == y.tolist()


def test_a_usps_value_outside_minus_one_to_one_is_refused_not_wrapped(tmp_path):
    import bz2

    from core.errors import RunFailure

    write_usps(tmp_path)
    path = tmp_path / "usps" / "usps.t.bz2"
    lines = bz2.decompress(path.read_bytes()).decode().splitlines()
    head, *values = lines[2].split()
    values[7] = values[7].split(":")[0] + ":1.5"
    lines[2] = " ".join([head, *values])
    path.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    with pytest.raises(RunFailure, match="line 3 holds the pixel value 1.5"):
        load_split("usps", "test", tmp_path)


def test_mnistm_images_without_their_labels_file_name_the_labels_file(tmp_path):
    from core.errors import RunFailure

    write_mnistm(tmp_path)
    (tmp_path / "mnist_m" / "mnist_m_test_labels.txt").unlink()
    with pytest.raises(RunFailure, match="labels file .*mnist_m_test_labels.txt is missing"):
        load_split("mnistm", "test", tmp_path)


def test_an_mnistm_label_out_of_range_is_refused(tmp_path):
    from core.errors import RunFailure

    write_mnistm(tmp_path)
    labels = tmp_path / "mnist_m" / "mnist_m_test_labels.txt"
    lines = labels.read_text().splitlines()
    lines[1] = lines[1].split()[0] + " 12"
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(RunFailure, match="line 2 gives label 12"):
        load_split("mnistm", "test", tmp_path)
