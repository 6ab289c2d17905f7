"""k-nearest-neighbour classification on embeddings, as scikit-learn's KNeighborsClassifier does it
(Euclidean distance, uniform vote, ties to the smallest label), in chunked torch for speed.
sklearn stays the reference (`knn_predict_sklearn`), and tests hold the two equal."""
from __future__ import annotations

import torch

from core.amp import fp32
from core.errors import UsageError


def _check(train_x: torch.Tensor, k: int) -> None:
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}")
    if k > len(train_x):
        raise UsageError(f"k={k} is larger than the number of training points ({len(train_x)})")


@torch.no_grad()
def knn_predict(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, k: int = 3,
                chunk: int = 2048, num_classes: int = 10) -> torch.Tensor:
    """Predicted labels of test_x, on train_x's device (on a GPU no copy to the host: an attack calls this on every
    step). The distances are computed in fp32 even inside a bf16 autocast region: |t|^2 - 2 q.t in bf16 flips the
    order of close neighbours."""
    _check(train_x, k)
    with fp32():
        return _predict(train_x, train_y, test_x, k, chunk, num_classes)


def _predict(train_x, train_y, test_x, k: int, chunk: int, num_classes: int) -> torch.Tensor:
    train_x = train_x.float()
    train_sq = (train_x * train_x).sum(1)
    preds = []
    for start in range(0, len(test_x), chunk):
        q = test_x[start:start + chunk].float().to(train_x.device)
        # squared Euclidean distance as one matmul (|q|^2 is constant per row, so it cannot change the order)
        d = torch.addmm(train_sq.unsqueeze(0), q, train_x.T, alpha=-2.0)
        idx = d.topk(k, dim=1, largest=False).indices
        votes = torch.zeros(len(q), num_classes, device=q.device).scatter_add_(
            1, train_y.to(q.device)[idx], torch.ones(idx.shape, device=q.device))
        preds.append(votes.argmax(1))  # argmax returns the first maximum: the smallest tied label
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long, device=train_x.device)


def knn_predict_sklearn(train_x, train_y, test_x, k: int = 3):
    from sklearn.neighbors import KNeighborsClassifier

    _check(train_x, k)
    clf = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(train_x.cpu().numpy(), train_y.cpu().numpy())
    return torch.from_numpy(clf.predict(test_x.cpu().numpy())).long()
