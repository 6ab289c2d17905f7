"""The dataset names trustlab knows, and what each one is (no torch here: experiments and the CLI's
choices import these names). loaders/datasets.py reads them; the readers live there."""
from __future__ import annotations

DIGIT_CLASSES = tuple(str(d) for d in range(10))
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# name -> (class names, what it is)
DATASETS: dict[str, tuple[tuple[str, ...], str]] = {
    "svhn": (DIGIT_CLASSES, "Street View House Numbers, 32x32 RGB (torchvision SVHN)"),
    "mnist": (DIGIT_CLASSES, "MNIST handwritten digits, 28x28 grayscale (torchvision MNIST)"),
    "cifar10": (CIFAR_CLASSES, "CIFAR-10, 32x32 RGB (torchvision CIFAR10)"),
    "digits": (DIGIT_CLASSES, "scikit-learn's 1,797 handwritten digits, 8x8 upsampled to 32x32 RGB (embedded)"),
    "digits-inverted": (DIGIT_CLASSES, "the same digits drawn dark-on-light in random colours (embedded)"),
}
EMBEDDED = ("digits", "digits-inverted")
SPLITS = ("train", "test")
NUM_CLASSES = 10


def class_names(dataset: str) -> tuple[str, ...]:
    return DATASETS[dataset][0] if dataset in DATASETS else DIGIT_CLASSES
