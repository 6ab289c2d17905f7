"""RandConv against its definition, and its consistency loss against a naive loop."""
import math

import pytest
import torch
import torch.nn.functional as F

from loaders.randconv import RandConv, rand_conv, random_kernel
from losses.consistency import consistency_loss


def _images(n=6, seed=0):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_identity_kernel_gives_the_input_back():
    x = _images()
    eye = torch.zeros(3, 3, 1, 1)
    eye[range(3), range(3)] = 1
    for mean, std in ((None, None), ((0.5,) * 3, (0.5,) * 3), ((0.1, 0.2, 0.3), (0.3, 0.2, 0.1))):
        for alpha in (0.0, 0.3, 1.0):
            assert torch.allclose(rand_conv(x, eye, alpha, mean, std), x, atol=1e-6)


def test_mix_is_the_blend_of_the_convolution_and_the_input_in_normalised_space():
    x, w = _images(), random_kernel(3, torch.Generator().manual_seed(1))
    xn = (x - 0.5) / 0.5
    expected = (0.25 * F.conv2d(xn, w, padding=1) + 0.75 * xn) * 0.5 + 0.5
    assert torch.allclose(rand_conv(x, w, 0.25, (0.5,) * 3, (0.5,) * 3), expected, atol=1e-6)


def test_kernel_weights_follow_kaiming_normal_fan_in():
    w = random_kernel(7, torch.Generator().manual_seed(0))
    assert w.shape == (3, 3, 7, 7)
    assert abs(w.std().item() - 1 / math.sqrt(3 * 49)) < 0.2 / math.sqrt(3 * 49)


def test_views_keep_shapes_dtype_device_and_variance_and_differ_per_batch():
    x = _images(8)
    rc = RandConv(views=3, mean=(0.5,) * 3, std=(0.5,) * 3)
    out = rc(x, torch.Generator().manual_seed(0))
    assert out.shape == (24, 3, 32, 32) and out.dtype == x.dtype and out.device == x.device
    assert torch.isfinite(out).all()
    views = out.chunk(3)
    assert not torch.allclose(views[0], views[1])  # each view its own kernel and alpha
    again = rc(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # the same generator state draws the same kernels
    assert not torch.equal(out, rc(x, torch.Generator().manual_seed(1)))  # the next batch, new kernels
    # unclamped like the paper's code, but variance-preserving: the normalised output stays of the input's order
    spread = ((out - 0.5) / 0.5).std() / ((x - 0.5) / 0.5).std()
    assert 0.2 < spread.item() < 5


def test_views_under_cpu_bf16_autocast_keep_shapes_and_stay_finite():
    rc = RandConv(views=3)
    x = torch.rand(8, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        views = rc(x, torch.Generator().manual_seed(0))
    assert views.shape == (24, 3, 32, 32) and torch.isfinite(views.float()).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA here")
def test_runs_on_the_gpu():
    x = _images().cuda()
    out = RandConv()(x, torch.Generator().manual_seed(0))
    assert out.is_cuda and out.shape == (18, 3, 32, 32)


def test_consistency_loss_against_a_naive_loop():
    logits = torch.randn(3 * 5, 10, generator=torch.Generator().manual_seed(0))
    probs = [F.softmax(v, dim=1) for v in logits.chunk(3)]
    total = 0.0
    for i in range(5):
        m = [sum(p[i, c].item() for p in probs) / 3 for c in range(10)]
        for p in probs:
            total += sum(p[i, c].item() * (math.log(p[i, c].item()) - math.log(max(m[c], 1e-7))) for c in range(10))
    assert consistency_loss(logits, 3).item() == pytest.approx(total / 5 / 3, rel=1e-5)
    same = torch.randn(5, 10).repeat(3, 1)
    assert consistency_loss(same, 3).item() == pytest.approx(0.0, abs=1e-6)


def test_consistency_loss_keeps_a_finite_gradient_when_a_softmax_underflows():
    """A confident view (a logit gap of 200: its other classes' softmax is exactly 0 in float32) once made the
    gradient NaN and stopped a paper-profile run; the reference is the definition in float64, where nothing
    underflows (exp(-200) is about 1e-87)."""
    logits = torch.tensor([[200.0, 0, 0], [0, 1, 2], [200.0, 0, 0], [0, 1, 2.5]], requires_grad=True)
    loss = consistency_loss(logits, 2)
    loss.backward()
    ref_logits = logits.detach().double().requires_grad_(True)
    probs = F.softmax(ref_logits, dim=1).chunk(2)
    log_m = torch.stack(probs).mean(0).clamp(min=1e-7).log()
    ref = sum((p * (p.log() - log_m)).sum(1).mean() for p in probs) / 2
    ref.backward()
    assert torch.isfinite(logits.grad).all()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    assert torch.allclose(logits.grad.double(), ref_logits.grad, atol=1e-6)


def test_a_randconv_section_trains_at_smoke_and_records_its_settings(tmp_path, data_root):
    """One smoke epoch with RandConv through the one training loop; its settings land in the config."""
    import json

    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["train", "--preset", "dg-randconv-digitnet", "--profile", "smoke",
                                      "--data-root", str(data_root), "--no-download", "--no-wandb",
                                      "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    r = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert r["config"]["randconv"] is True and r["config"]["arch"] == "digitnet"
    assert {"mnist_test", "usps_test", "svhn_test", "mnistm_test", "syn_test"} <= set(r["datasets"])


def test_the_img_variant_leaves_about_half_the_views_unchanged_and_convolves_the_rest_unmixed():
    from loaders.randconv import RandConv, rand_conv, random_kernel

    rc = RandConv(views=1, mix=False, identity_prob=0.5, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    x = torch.rand(4, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    outs = [rc(x, g) for _ in range(400)]
    unchanged = sum(torch.equal(o, x) for o in outs)
    assert 160 <= unchanged <= 240  # Binomial(400, 0.5): about 10 standard deviations of room either side
    # a convolved view is the random convolution alone (alpha = 1), as the authors' RandConvModule without mixing
    g = torch.Generator().manual_seed(1)
    ref = torch.Generator().manual_seed(1)
    for _ in range(20):
        out = rc(x, g)
        if float(torch.rand((), generator=ref)) < 0.5:
            assert torch.equal(out, x)
            continue
        k = rc.kernels[int(torch.randint(len(rc.kernels), (1,), generator=ref))]
        expected = rand_conv(x, random_kernel(k, ref, 3), 1.0, rc.mean, rc.std)
        torch.testing.assert_close(out, expected)
    assert rc.describe()["variant"] == "img"


def test_the_img_section_is_the_authors_rc_img_line():
    from experiments import resolve

    cfg = resolve("dg-randconv-img-digitnet", "paper")
    assert (cfg.randconv, cfg.randconv_mix, cfg.randconv_identity_prob, cfg.randconv_weight, cfg.randconv_views,
            cfg.randconv_kernels, cfg.randconv_chain) == (True, False, 0.5, 5.0, 3, (1, 3, 5, 7), True)
    mix = resolve("dg-randconv-digitnet", "paper")
    assert (mix.randconv_mix, mix.randconv_identity_prob, mix.randconv_weight, mix.randconv_chain) == \
        (True, 0.0, 10.0, True)


@pytest.mark.parametrize("mix, identity_prob", [(True, 0.0), (False, 0.5)])
def test_chained_views_follow_the_authors_training_loop(mix, identity_prob):
    """wildphoton/RandConv's randconv_trainer.py, step by step: randomize(); inputs = rand_module(inputs);
    then twice randomize(); rand_module(inputs), on the overwritten inputs. Its module, written out here with the
    same random draws: per call the identity coin, then (when convolving) the kernel size, alpha for mix, the
    weights; on normalised input, mixed in normalised space."""
    from loaders.randconv import RandConv

    mean, std = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    rc = RandConv(mix=mix, identity_prob=identity_prob, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), chain=True)
    x = torch.rand(4, 3, 9, 9)
    for seed in range(12):
        ours = rc(x, torch.Generator().manual_seed(seed)).chunk(3)
        g = torch.Generator().manual_seed(seed)

        def module(inp, g=g):  # their RandConvModule on whitened input
            if identity_prob > 0 and float(torch.rand((), generator=g)) < identity_prob:
                return inp
            k = rc.kernels[int(torch.randint(len(rc.kernels), (1,), generator=g))]
            alpha = float(torch.rand((), generator=g)) if mix else 1.0
            w = torch.randn(3, 3, k, k, generator=g) / math.sqrt(3 * k * k)
            out = torch.nn.functional.conv2d(inp, w, padding=k // 2)
            return alpha * out + (1 - alpha) * inp

        inputs = module((x - mean) / std)  # the first view overwrites `inputs`
        theirs = [inputs, module(inputs), module(inputs)]
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b * std + mean, atol=1e-5, rtol=1e-5)
    # the old behaviour stays available (and older results files read as it): every view from the batch
    flat = RandConv(mix=mix, identity_prob=identity_prob, chain=False)
    assert RandConv(mix=mix, identity_prob=identity_prob).chain is False and flat.describe()["later_views_from"] == \
        "the batch"


def test_the_random_convolution_acts_on_normalised_input_for_every_architecture():
    from experiments import resolve
    from loaders.randconv import RandConv

    for section in ("q1-randconv", "dg-randconv-resnet18", "dg-randconv-digitnet"):
        cfg = resolve(section, "smoke", pretrained=False)
        rc = RandConv.from_config(cfg)
        # the ResNet18 takes raw pixels (input_mean None): RandConv standardises with the ConvNet's (0.5, 0.5)
        assert (tuple(rc.mean), tuple(rc.std)) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), section
    # on raw pixels a random kernel would add the offset sum(w) * pixel mean; normalised, a constant grey image at
    # the mean stays at it whatever the kernel
    grey = torch.full((2, 3, 8, 8), 0.5)
    g = torch.Generator().manual_seed(0)
    out = rc(grey, g)
    torch.testing.assert_close(out[:, :, 2:-2, 2:-2], torch.full_like(out[:, :, 2:-2, 2:-2], 0.5))
