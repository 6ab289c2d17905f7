"""Evaluation computes numbers and writes them into results files: accuracy, the attack, kNN and UMAP runners,
the gradient-masking audit and the one statistics module (stats.py). report/ presents them; nothing here
draws a report or imports report/."""
