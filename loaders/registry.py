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
    "usps": (DIGIT_CLASSES, "USPS handwritten digits, 16x16 grayscale (torchvision USPS)"),
    "mnistm": (DIGIT_CLASSES, "MNIST-M: MNIST digits blended over BSDS500 colour patches, 32x32 RGB (Ganin & Lempitsky)"),
    "syn": (DIGIT_CLASSES, "SynDigits: synthetic house-number-like digits, 32x32 RGB (Ganin & Lempitsky)"),
    "digits": (DIGIT_CLASSES, "scikit-learn's 1,797 handwritten digits, 8x8 upsampled to 32x32 RGB (embedded)"),
    "digits-inverted": (DIGIT_CLASSES, "the same digits drawn dark-on-light in random colours (embedded)"),
}
EMBEDDED = ("digits", "digits-inverted")
# Where users usually get the datasets that torchvision cannot download.
WHERE_TO_GET = {
    "mnistm": "mnist_m.tar.gz from Ganin & Lempitsky's DANN project page (unpack it under the data root)",
    "syn": "SynDigits (synth_train_32x32.mat, synth_test_32x32.mat) from Ganin & Lempitsky's DANN project page",
}
SPLITS = ("train", "test")
NUM_CLASSES = 10


def class_names(dataset: str) -> tuple[str, ...]:
    return DATASETS[dataset][0] if dataset in DATASETS else DIGIT_CLASSES
