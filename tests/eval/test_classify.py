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


def _knn_scores(train_x, train_y, k=3):
    from eval.classify import KnnScores

    return KnnScores(Embed(), train_x.float(), train_y, k)


def _images_at(points):
    """Images whose Embed features are `points` (n x 3): each channel constant at its coordinate."""
    return points[:, :, None, None].expand(-1, -1, 4, 4).clone()


def test_knn_scores_argmax_is_the_knn_vote_where_the_smooth_score_disagrees():
    # the query at the origin: its 3 nearest train points are one of class 0 (0.5 away) and two of class 1 (1.0,
    # 1.1): the vote is 1; class 0's 3 nearest are nearer on average (0.5, 5, 5 vs 1.0, 1.1, 10): smooth says 0
    train_x = torch.tensor([[0.5, 0, 0], [5, 0, 0], [0, 5, 0], [1.0, 0, 0], [0, 1.1, 0], [0, 0, 10]])
    train_y = torch.tensor([0, 0, 0, 1, 1, 1])
    scores = _knn_scores(train_x, train_y)
    x = _images_at(torch.zeros(1, 3))
    assert scores.smooth(Embed().features(x)).argmax(1).item() == 0
    assert knn_predict(train_x, train_y, Embed().features(x), 3).item() == 1
    assert scores(x).argmax(1).item() == 1


def test_knn_scores_follow_the_vote_everywhere_with_the_smooth_scores_gradients():
    g = torch.Generator().manual_seed(0)
    train_x, train_y = torch.rand(300, 3, generator=g), torch.randint(0, 10, (300,), generator=g)
    scores = _knn_scores(train_x, train_y)
    x = _images_at(torch.rand(200, 3, generator=g)).requires_grad_(True)
    out = scores(x)
    smooth = scores.smooth(Embed().features(x))
    vote = knn_predict(train_x, train_y, Embed().features(x).detach(), 3)
    assert (smooth.argmax(1) != vote).sum() > 10  # the two rules differ on many of these points ...
    assert torch.equal(out.argmax(1), vote)       # ... and the scores' argmax is the kNN's vote on every one
    for c in (0, 7):
        mine, = torch.autograd.grad(out[:, c].sum(), x, retain_graph=True)
        theirs, = torch.autograd.grad(smooth[:, c].sum(), x, retain_graph=True)
        torch.testing.assert_close(mine, theirs)  # the lift carries no gradient
