"""The dataset names trustlab knows, and what each one is (no torch here: experiments and the CLI's
choices import these names). loaders/datasets.py reads them; the readers live there."""
from __future__ import annotations

from typing import NamedTuple

DIGIT_CLASSES = tuple(str(d) for d in range(10))
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

class Dataset(NamedTuple):
    """What trustlab knows of a dataset: its class names, what it is, the study's (or the field's) name for
    it in tables and figures, the sizes of its official train and test splits, and its colour in figures."""
    classes: tuple[str, ...]
    description: str
    label: str
    sizes: tuple[int, int]  # (train, test) images of the official splits
    colour: str | None = None


DATASETS: dict[str, Dataset] = {
    "svhn": Dataset(DIGIT_CLASSES, "Street View House Numbers, 32x32 RGB (torchvision SVHN)", "SVHN",
                    (73_257, 26_032), "#1f77b4"),
    "mnist": Dataset(DIGIT_CLASSES, "MNIST handwritten digits, 28x28 grayscale (torchvision MNIST)", "MNIST",
                     (60_000, 10_000), "#ff7f0e"),
    "cifar10": Dataset(CIFAR_CLASSES, "CIFAR-10, 32x32 RGB (torchvision CIFAR10)", "CIFAR-10", (50_000, 10_000),
                       "#2ca02c"),
    "usps": Dataset(DIGIT_CLASSES, "USPS handwritten digits, 16x16 grayscale (torchvision USPS)", "USPS",
                    (7_291, 2_007), "#d62728"),
    "mnistm": Dataset(DIGIT_CLASSES, "MNIST-M: MNIST digits blended over BSDS500 colour patches, 32x32 RGB "
                      "(Ganin & Lempitsky)", "MNIST-M", (59_001, 9_001), "#9467bd"),
    "syn": Dataset(DIGIT_CLASSES, "SynDigits: synthetic house-number-like digits, 32x32 RGB (Ganin & Lempitsky)",
                   "SYN", (479_400, 9_553), "#8c564b"),
    "digits": Dataset(DIGIT_CLASSES, "scikit-learn's 1,797 handwritten digits, 8x8 upsampled to 32x32 RGB "
                      "(embedded)", "digits", (1_347, 450)),
    "digits-inverted": Dataset(DIGIT_CLASSES, "the same digits drawn dark-on-light in random colours (embedded)",
                               "inverted digits", (1_347, 450)),
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
    return DATASETS[dataset].classes if dataset in DATASETS else DIGIT_CLASSES


def label(dataset: str) -> str:
    """The name tables and figures use for a dataset (the study's: "SVHN", "CIFAR-10", ...)."""
    return DATASETS[dataset].label if dataset in DATASETS else dataset


def sizes(dataset: str) -> tuple[int, int]:
    """(train, test) images of the dataset's official splits; (0, 0) for a name the registry lacks."""
    return DATASETS[dataset].sizes if dataset in DATASETS else (0, 0)


def stand_in_for(dataset: str, stand_ins: dict) -> str:
    """The study dataset that `dataset` stands in for under a run's stand-in map (study name -> stand-in),
    or the dataset itself. The one place the map is read backwards."""
    return next((study for study, used in stand_ins.items() if used == dataset), dataset)


def shown(dataset: str, stand_ins: dict) -> str:
    """A dataset as tables and figures name it: the study's name, and the stand-in's where one ran."""
    study = stand_in_for(dataset, stand_ins)
    return label(study) if study == dataset else f"{label(study)} (stand-in: {label(dataset)})"
