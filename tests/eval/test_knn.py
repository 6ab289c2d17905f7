"""eval/knn.py: the torch kNN against scikit-learn's KNeighborsClassifier."""
import pytest
import torch

from core.errors import UsageError
from eval.knn import knn_predict, knn_predict_sklearn


@pytest.mark.parametrize("k", [1, 3, 7])
def test_knn_equals_sklearn(k):
    g = torch.Generator().manual_seed(k)
    train_x, test_x = torch.randn(500, 32, generator=g), torch.randn(300, 32, generator=g)
    train_y = torch.randint(0, 10, (500,), generator=g)
    ours = knn_predict(train_x, train_y, test_x, k=k, chunk=64)
    assert torch.equal(ours, knn_predict_sklearn(train_x, train_y, test_x, k=k))


def test_knn_ties_go_to_the_smallest_label_like_sklearn():
    train_x = torch.tensor([[0.0], [1.0], [-1.0], [5.0]])
    train_y = torch.tensor([7, 2, 4, 1])
    test_x = torch.tensor([[0.1], [4.0]])
    assert torch.equal(knn_predict(train_x, train_y, test_x, k=3),
                       knn_predict_sklearn(train_x, train_y, test_x, k=3))


@pytest.mark.parametrize("k", [0, -1, 11])
def test_bad_k(k):
    with pytest.raises(UsageError, match="k"):
        knn_predict(torch.randn(10, 2), torch.zeros(10, dtype=torch.long), torch.randn(2, 2), k=k)


def test_predictions_stay_on_the_features_device():
    """No host copy: on a GPU every attack step calls the kNN, and a copy to the CPU is a sync each time (a meta
    tensor cannot be copied to the host at all, so any copy raises here)."""
    train_x, test_x = torch.empty(50, 8, device="meta"), torch.empty(7, 8, device="meta")
    out = knn_predict(train_x, torch.empty(50, dtype=torch.long, device="meta"), test_x, k=3, chunk=4)
    assert out.device.type == "meta" and out.shape == (7,)
