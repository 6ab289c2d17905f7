"""The model's resize under --deterministic: the same numbers and gradients as interpolate, without its backward
(which has no deterministic CUDA kernel: with use_deterministic_algorithms it raises on a GPU)."""
import contextlib

import pytest
import torch

from models import normalize
from models.normalize import Resize


@contextlib.contextmanager
def deterministic():
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("shape,size", [((2, 3, 32, 32), 224), ((2, 3, 64, 48), 32), ((1, 1, 28, 28), 32),
                                        ((1, 3, 40, 20), 32), ((1, 3, 20, 40), 32)])
def test_deterministic_resize_equals_interpolate_and_never_differentiates_it(monkeypatch, shape, size):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    a = x.clone().requires_grad_()
    want = Resize(size)(a)
    (want * torch.arange(want.numel()).view_as(want).sin()).sum().backward()

    real = torch.nn.functional.interpolate

    def as_on_cuda(t, *args, **kw):  # what a GPU does: no deterministic backward
        if t.requires_grad and torch.are_deterministic_algorithms_enabled():
            raise RuntimeError("upsample_bilinear2d_backward_out_cuda does not have a deterministic implementation")
        return real(t, *args, **kw)

    monkeypatch.setattr(normalize.nn.functional, "interpolate", as_on_cuda)
    b = x.clone().requires_grad_()
    with deterministic():
        got = Resize(size)(b)
        (got * torch.arange(got.numel()).view_as(got).sin()).sum().backward()
    assert got.shape == (shape[0], shape[1], size, size)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)  # float32 rounding of the weights: ~3e-6
    torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-5)


def test_deterministic_resize_stays_fp32_under_bf16_autocast_and_keeps_channels_last():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)).contiguous(
        memory_format=torch.channels_last)
    want = Resize(224)(x)
    with deterministic(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = Resize(224)(x)
    assert got.dtype == torch.float32 and got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
