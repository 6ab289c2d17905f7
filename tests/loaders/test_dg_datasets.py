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
    assert set(evals) == {"mnist_test", "mnistm_test"}  # present: evaluated
    only = tmp_path / "only-mnist"
    only.mkdir()
    (only / "MNIST").symlink_to(data_root / "MNIST", target_is_directory=True)
    _, evals, described = prepare_data(cfg, only, None, False)
    assert list(evals) == ["mnist_test"]
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
