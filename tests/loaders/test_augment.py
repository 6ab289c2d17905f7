import torch

from loaders.augment import study_augmentation
from loaders.batches import Batches
from loaders.datasets import load_split


def test_shape_range_and_per_sample_randomness():
    aug = study_augmentation()
    x = torch.rand(1, 3, 32, 32).expand(8, -1, -1, -1).contiguous()  # 8 copies of one image
    torch.manual_seed(0)
    y = aug(x)
    assert y.shape == (8, 3, 32, 32)
    assert y.min() >= 0 and y.max() <= 1
    # the same input gives 8 different outputs: each sample draws its own parameters
    flat = y.flatten(1)
    assert all(not torch.allclose(flat[i], flat[j]) for i in range(8) for j in range(i + 1, 8))
    params = aug._params
    affine = params[0].data["angle"]
    assert affine.unique().numel() == 8


def test_fixed_seed_reproduces():
    aug = study_augmentation()
    x = torch.rand(4, 3, 32, 32)
    torch.manual_seed(3)
    a = aug(x)
    torch.manual_seed(3)
    b = aug(x)
    assert torch.equal(a, b)


def test_mnist_sized_input_comes_out_32px():
    x = torch.rand(4, 3, 28, 28)
    assert study_augmentation()(x).shape == (4, 3, 32, 32)


def test_no_flips_in_the_set():
    names = [type(m).__name__ for m in study_augmentation().children()]
    assert names == ["RandomAffine", "ColorJitter", "RandomPerspective", "RandomCrop"]


def test_batches_cover_every_sample_once_and_convert_gray_to_rgb():
    data = load_split("digits", "test")
    data.images = data.images[:, :1]  # one channel, like MNIST
    batches = Batches(data, 64, torch.device("cpu"), shuffle=True)
    seen, labels = 0, []
    for x, y in batches.epoch(seed=5):
        assert x.shape[1] == 3 and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
        seen += len(y)
        labels.append(y)
    assert seen == len(data)
    assert sorted(torch.cat(labels).tolist()) == sorted(data.labels.tolist())
    order_a = torch.cat([y for _, y in batches.epoch(seed=5)])
    assert torch.equal(order_a, torch.cat(labels))  # same seed, same order


def test_resize_on_device():
    data = load_split("digits", "test")
    x, _ = next(Batches(data, 4, torch.device("cpu"), image_size=64).epoch())
    assert x.shape == (4, 3, 64, 64)


def test_tensor_path_equals_a_plain_dataloader_for_the_same_seed():
    """Our indexed batches equal torch's DataLoader over the same data in the same (seeded) order."""
    from torch.utils.data import DataLoader, TensorDataset

    data = load_split("digits", "test")
    ours = Batches(data, 32, torch.device("cpu"), shuffle=True)
    order = ours.order(seed=7).tolist()
    plain = DataLoader(TensorDataset(data.images, data.labels), batch_size=32, sampler=order)
    pairs = list(zip(ours.epoch(seed=7), plain))
    assert len(pairs) == len(ours)
    for (x, y), (raw, labels) in pairs:
        assert torch.equal(y, labels)
        assert torch.equal(x, raw.float() / 255)
