from loaders.datasets import ImageSet, load_split, stratified_subset, random_subset, train_val_split

__all__ = ["ImageSet", "load_split", "stratified_subset", "random_subset", "train_val_split"]
