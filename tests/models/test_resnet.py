import pytest
import torch
import torchvision
from torch import nn

from core.errors import RunFailure
from models.resnet import ResNet18, load_imagenet_weights


def _strip_bn(model: nn.Module) -> nn.Module:
    """torchvision's resnet18 with every BatchNorm replaced by Identity: the reference for norm='none'."""
    for name, child in model.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(model, name, nn.Identity())
        else:
            _strip_bn(child)
    return model


def test_state_dict_keys_and_shapes_equal_torchvision():
    ours, ref = ResNet18(num_classes=1000).state_dict(), torchvision.models.resnet18().state_dict()
    assert list(ours) == list(ref)
    assert all(ours[k].shape == ref[k].shape for k in ref)


@pytest.mark.parametrize("size", [32, 28, 64])
def test_loads_torchvision_strictly_and_gives_the_same_outputs(size):
    torch.manual_seed(0)
    ref = torchvision.models.resnet18().eval()
    # Non-trivial BatchNorm statistics, so the comparison exercises them.
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    ours = ResNet18(num_classes=1000).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.rand(3, 3, size, size)
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-5)


def test_no_bn_variant_matches_torchvision_without_batchnorm():
    torch.manual_seed(1)
    ref = _strip_bn(torchvision.models.resnet18()).eval()
    ours = ResNet18(num_classes=1000, norm="none").eval()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in ours.modules())
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_imagenet_weights_from_file_load_everything_but_fc(tmp_path, norm):
    torch.manual_seed(2)
    ref = torchvision.models.resnet18()
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    model = load_imagenet_weights(ResNet18(num_classes=10, norm=norm), str(tmp_path / "w.pth"))
    own = model.state_dict()
    for key, value in own.items():
        if not key.startswith("fc."):
            assert torch.equal(value, ref.state_dict()[key]), key
    assert own["fc.weight"].shape == (10, 512)


def test_weights_with_wrong_shapes_are_refused(tmp_path):
    state = torchvision.models.resnet18().state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(32, 64, 3, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(RunFailure, match="wrong shapes: layer1.0.conv1.weight"):
        load_imagenet_weights(ResNet18(), str(tmp_path / "bad.pth"))


def test_a_pickled_whole_model_is_refused(tmp_path):
    torch.save(torchvision.models.resnet18(), tmp_path / "model.pth")
    with pytest.raises(RunFailure, match="pickled Python objects"):
        load_imagenet_weights(ResNet18(), str(tmp_path / "model.pth"))


def test_normalization_is_inside_the_model_and_not_saved():
    model = ResNet18(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)).eval()
    plain = ResNet18().eval()
    plain.load_state_dict(model.state_dict(), strict=True)  # no extra keys from the normalization
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(model(x), plain((x - 0.5) / 0.5))


def test_dropout_and_embedding_head():
    model = ResNet18(dropout=0.5, head="none").eval()
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 512)
    assert not any(k.startswith("fc.") for k in model.state_dict())


def test_the_resize_to_the_training_resolution_is_a_layer_without_parameters():
    from models.resnet import ResNet18

    torch.manual_seed(0)
    plain, resized = ResNet18(), ResNet18(input_size=64)
    resized.load_state_dict(plain.state_dict())  # the same keys: torchvision's
    plain.eval(), resized.eval()
    x = torch.rand(2, 3, 32, 32)
    up = torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(resized(x), plain(up))
        torch.testing.assert_close(resized(up), plain(up))  # already at its size: left alone
