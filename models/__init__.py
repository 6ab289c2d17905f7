from models.resnet import ResNet18, build_model, load_imagenet_weights

__all__ = ["ResNet18", "build_model", "load_imagenet_weights"]
