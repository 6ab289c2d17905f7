"""eval/classify.py: the centroid-cosine surrogate that white-box attacks on kNN (embedding) models use."""
import torch
import torch.nn.functional as F

from eval.classify import SURROGATE_SCALE, CentroidLogits, Classifier
from eval.knn import knn_predict
from loaders.batches import Batches
from loaders.datasets import ImageSet


class Embed(torch.nn.Module):
    """A fixed 'embedding model': the mean of each channel's pixels, so features are easy to reason about."""
    head = "none"

    def features(self, x):
        return x.flatten(2).mean(2)

    def forward(self, x):
        return self.features(x)


def _set(n=60):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 3
    images = torch.zeros(n, 3, 4, 4, dtype=torch.uint8)
    for i, y in enumerate(labels):  # class c is bright in channel c
        images[i, y] = 200
        images[i] += torch.randint(0, 20, (3, 4, 4), generator=g, dtype=torch.uint8)
    return ImageSet(images, labels, "toy", "train", "test")


def test_surrogate_logits_are_scaled_cosines_to_class_centroids():
    data = _set()
    clf = Classifier(Embed(), Batches(data, 16, torch.device("cpu")))
    assert clf.kind == "knn" and isinstance(clf.logits_model, CentroidLogits)
    x = data.images[:5].float() / 255
    feats = F.normalize(Embed().features(x), dim=1)
    centroids = torch.stack([F.normalize(clf.train_x[clf.train_y == c], dim=1).mean(0) for c in range(3)])
    expected = SURROGATE_SCALE * feats @ F.normalize(centroids, dim=1).T
    torch.testing.assert_close(clf.logits_model(x)[:, :3], expected)
    # the surrogate's argmax agrees with the kNN prediction on well-separated classes
    assert torch.equal(clf.logits_model(x)[:, :3].argmax(1), clf.predict(x))


def test_knn_prediction_is_the_knn_of_the_train_embeddings():
    data = _set()
    clf = Classifier(Embed(), Batches(data, 16, torch.device("cpu")), k=3)
    x = data.images[:10].float() / 255
    assert torch.equal(clf.predict(x), knn_predict(clf.train_x, clf.train_y, Embed().features(x), 3))


def test_a_model_with_an_fc_head_predicts_by_argmax_unless_knn_is_asked():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 10))
    model.features = lambda x: x.flatten(1)
    clf = Classifier(model)
    x = torch.rand(4, 3, 4, 4)
    assert clf.kind == "argmax" and torch.equal(clf.predict(x), model(x).argmax(1))
    assert Classifier(model, Batches(_set(), 16, torch.device("cpu")), knn=True).kind == "knn"
