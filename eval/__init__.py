"""Evaluation: accuracy, curves (and later kNN, features, UMAP, report)."""
