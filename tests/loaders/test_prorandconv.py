"""Pro-RandConv against its definition: the deformable convolution against torch's convolution, the block against
a step-by-step reference, the repeats against a naive loop, and the section against the paper's protocol."""
import pytest
import torch
import torch.nn.functional as F

from loaders.prorandconv import KERNEL, ProRandConv, block, deform, gaussian_taper


def _images(n=4, seed=0, size=12):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _identity_kernel():
    eye = torch.zeros(3, 3, KERNEL, KERNEL)
    eye[range(3), range(3), KERNEL // 2, KERNEL // 2] = 1
    return eye


def test_an_identity_kernel_with_zero_offsets_is_the_identity_and_zero_offsets_are_a_plain_convolution():
    x = _images()
    zero = torch.zeros(1, 2 * KERNEL * KERNEL, 12, 12)
    torch.testing.assert_close(deform(x, _identity_kernel(), zero), x)
    w = torch.randn(3, 3, KERNEL, KERNEL, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(deform(x, w, zero), F.conv2d(x, w, padding=1), atol=1e-5, rtol=1e-5)


def test_a_whole_pixel_offset_samples_the_shifted_image():
    """Every tap moved by +1 row: the output at (i, j) is the convolution of the image one row further down."""
    x = _images()
    w = torch.randn(3, 3, KERNEL, KERNEL, generator=torch.Generator().manual_seed(2))
    offset = torch.zeros(1, 2 * KERNEL * KERNEL, 12, 12)
    offset[:, 0::2] = 1.0  # (dy, dx) per tap: dy = 1
    shifted = F.conv2d(x, w, padding=1)[:, :, 1:]  # row i + 1 of the plain convolution
    torch.testing.assert_close(deform(x, w, offset)[:, :, :-1], shifted, atol=1e-5, rtol=1e-5)


def test_the_block_standardises_each_images_channels_then_applies_the_affine_and_tanh():
    x = _images()
    w = torch.randn(3, 3, KERNEL, KERNEL, generator=torch.Generator().manual_seed(3))
    zero = torch.zeros(1, 2 * KERNEL * KERNEL, 12, 12)
    gamma, beta = torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1, 1), torch.tensor([0.1, 0.0, -0.3]).view(1, 3, 1, 1)
    h = F.conv2d(x, w, padding=1)
    expected = torch.empty_like(h)
    for i in range(len(x)):  # step by step, image by image, channel by channel
        for c in range(3):
            z = (h[i, c] - h[i, c].mean()) / torch.sqrt(h[i, c].var(unbiased=False) + 1e-5)
            expected[i, c] = torch.tanh(gamma[0, c, 0, 0] * z + beta[0, c, 0, 0])
    torch.testing.assert_close(block(x, w, zero, gamma, beta), expected, atol=1e-5, rtol=1e-5)


def test_the_block_is_repeated_with_the_same_parameters_a_drawn_number_of_times():
    pro = ProRandConv(repeats=10, mean=(0.5,) * 3, std=(0.5,) * 3)
    x = _images()
    g = torch.Generator().manual_seed(4)
    p = pro.draw(g, 3, 12, 12)
    h = (x - 0.5) / 0.5
    for _ in range(p["repeats"]):  # the naive loop: one block, applied again and again
        h = block(h, p["weight"], p["offset"], p["gamma"], p["beta"])
    torch.testing.assert_close(pro.augment(x, p), h * 0.5 + 0.5)
    counts = [pro.draw(g, 3, 12, 12)["repeats"] for _ in range(600)]
    assert set(counts) == set(range(1, 11))  # L ~ U{1..10}
    assert 30 <= min(counts.count(k) for k in range(1, 11))  # 60 expected each


def test_views_keep_shapes_and_the_pixel_range_the_first_view_is_the_batch_and_draws_differ():
    pro = ProRandConv(mean=(0.5,) * 3, std=(0.5,) * 3)
    x = _images(6, size=32)
    g = torch.Generator().manual_seed(5)
    a, b = pro(x, g), pro(x, g)
    assert a.shape == (12, 3, 32, 32) and a.dtype == x.dtype
    assert torch.equal(a[:6], x)
    assert a.min() >= 0 and a.max() <= 1  # tanh's [-1, 1] mapped back with mean 0.5, std 0.5
    assert not torch.allclose(a[6:], b[6:])
    assert torch.isfinite(a).all()


def test_weights_are_he_scaled_and_tapered_by_a_gaussian_centred_on_the_kernel():
    taper = gaussian_taper(3, 0.5)
    assert taper[1, 1] == 1 and torch.allclose(taper, taper.T) and taper[0, 0] < taper[0, 1] < 1
    assert gaussian_taper(3, 1e-3).sum() == pytest.approx(1.0)  # a tiny sigma keeps the centre tap only
    ws = torch.stack([ProRandConv().draw(torch.Generator().manual_seed(s), 3, 8, 8)["weight"] for s in range(300)])
    assert abs(ws[:, :, :, 1, 1].std().item() - 1 / 27 ** 0.5) < 0.02  # the centre: N(0, 1/(k^2 C)), untapered
    assert ws[:, :, :, 0, 0].abs().mean() < ws[:, :, :, 1, 1].abs().mean()  # the corners shrink


def test_the_section_follows_the_papers_digits_protocol():
    from experiments import resolve
    from loaders.randconv import RandConv

    cfg = resolve("dg-prorandconv-digitnet", "paper")
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.batch_size, cfg.lr_schedule, cfg.epochs, cfg.train_size,
            cfg.arch, cfg.randconv_repeats, cfg.select_every) == ("sgd", 0.01, 0.9, 64, "cosine", 500, 10_000,
                                                                   "digitnet", 10, 0)
    pro = RandConv.from_config(cfg)
    assert isinstance(pro, ProRandConv) and pro.describe()["variant"] == "pro"
    assert (pro.views, pro.weight, pro.ce_all) == (2, 0.0, True)
    assert resolve("dg-prorandconv-digitnet", "quick").epochs < 500  # quick: the same schedule, shorter


def test_a_pro_randconv_run_trains_on_the_batch_and_its_copy_and_records_its_settings(tmp_path, monkeypatch):
    from experiments import resolve
    from trainers import loop

    seen = []
    real = loop.view_logits
    monkeypatch.setattr(loop, "view_logits", lambda m, p, v, n: seen.append((len(v), n)) or real(m, p, v, n))
    cfg = resolve("dg-prorandconv-digitnet", "demo", epochs=1, train_size=128, eval_size=40, val_size=0)
    r = loop.run(cfg, tmp_path / "pro", wandb=False)
    assert seen == [(128, 2), (128, 2)]  # batch 64: the 64 images and their 64 augmented copies, per step
    assert r["augmentation"]["variant"] == "pro" and r["augmentation"]["repeats_max"] == 10
    assert r["selected_by"] == "last epoch" and r["config"]["lr_schedule"] == "cosine"

