"""What evaluation and attacks see of a model: differentiable logits and a prediction rule.

A model with an fc head predicts by argmax of its logits. An embedding model (Circle Loss, fc removed)
predicts by kNN (k=3) on the train embeddings, as the study did. It has no logits, so white-box
attacks use a differentiable surrogate: cross-entropy over the cosine similarities of the embedding
to the class centroids of the train embeddings, times a fixed scale of 10 (a temperature of 0.1;
sign-gradient attacks depend on it only through the softmax weights). The surrogate is not the kNN's rule,
so attacks through it can overstate the kNN's robustness. KnnScores is a closer, differentiable stand-in
for the kNN, built from the kNN's own train embeddings (an attack with via="knn" goes through it); whatever an
attack goes through, robust accuracy is always the kNN's own vote on the attacked images.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eval.knn import knn_predict
from loaders.batches import Batches

SURROGATE_SCALE = 10.0


@torch.no_grad()
def embed(model: nn.Module, batches: Batches) -> tuple[torch.Tensor, torch.Tensor]:
    """512-d pooled features of every image in batches (eval mode; the model's mode is restored)."""
    from core.progress import bar as progress_bar

    was_training = model.training
    model.eval()
    feats, labels = [], []
    for x, y in progress_bar(batches.epoch(), total=len(batches), desc="embedding", unit="batch"):
        with batches.autocast():
            feats.append(model.features(x).float())
        labels.append(y)
    model.train(was_training)
    return torch.cat(feats), torch.cat(labels)


class CentroidLogits(nn.Module):
    def __init__(self, model: nn.Module, centroids: torch.Tensor, scale: float = SURROGATE_SCALE):
        super().__init__()
        self.model, self.scale = model, scale
        self.register_buffer("centroids", F.normalize(centroids, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(self.model.features(x), dim=1) @ self.centroids.T


class KnnScores(nn.Module):
    """A differentiable score built from the kNN's train embeddings: for each class c, minus the mean Euclidean
    distance from the embedding to its k nearest class-c train embeddings, divided by the median distance of a
    train embedding to its k-th nearest neighbour (a fixed scale, so scores are O(1)). Raising another class's
    score over the true one's moves the embedding away from its own class's nearest train points and toward the
    nearest other class's: the feature-space attack.

    The smooth score's argmax (the class whose k nearest points are closest) is not the kNN's majority vote on
    every input, so where the two differ the voted class's score is raised just above the top one (a shift with no
    gradient): the argmax is the kNN's own decision and the gradients are the smooth score's. An attack that
    judges success by the argmax (Square's margin, AutoAttack's APGD, FAB and Square) therefore stops only when
    the kNN's vote is wrong, as AutoAttack does on a model's own logits."""

    MARGIN = 1e-3  # how far above the smooth score's top the voted class is put, where the two differ

    def __init__(self, model: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor, k: int = 3):
        super().__init__()
        self.model, self.k = model, k
        self.register_buffer("train_x", train_x.float())
        self.register_buffer("train_y", train_y)
        probe = self.train_x[:2000]
        d = torch.cdist(probe, self.train_x)
        self.scale = float(d.topk(min(k + 1, len(self.train_x)), dim=1, largest=False).values[:, -1].median().clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.model.features(x).float()
        scores = self.smooth(feats)
        vote = knn_predict(self.train_x, self.train_y, feats.detach(), self.k).to(scores.device)
        differs = scores.argmax(1) != vote  # (no early return: no device sync)
        lift = (scores.detach().amax(1) - scores.detach().gather(1, vote[:, None]).squeeze(1) + self.MARGIN)
        return scores + torch.zeros_like(scores).scatter(1, vote[:, None], (lift * differs)[:, None])

    def smooth(self, feats: torch.Tensor) -> torch.Tensor:
        """The differentiable per-class scores of embeddings `feats`, before the kNN's vote is imposed."""
        d = torch.cdist(feats, self.train_x) / self.scale
        scores = []
        for c in range(10):
            own = d[:, self.train_y == c]
            if own.shape[1] == 0:
                scores.append(torch.full((len(d),), -1e4, device=d.device))
                continue
            scores.append(-own.topk(min(self.k, own.shape[1]), dim=1, largest=False).values.mean(1))
        return torch.stack(scores, 1)


class Classifier:
    def __init__(self, model: nn.Module, train: Batches | None = None, k: int = 3, knn: bool | None = None):
        """knn=None: kNN exactly for embedding models. knn=True: kNN on the pooled features of any model
        (an fc model's attacks then still follow its own fc logits)."""
        self.model, self.k = model, k
        has_fc = getattr(model, "head", "fc") == "fc"
        self.kind = "knn" if (knn if knn is not None else not has_fc) else "argmax"
        self.logits_model = model
        if self.kind == "knn":
            if train is None:
                raise ValueError("an embedding model needs its train set for kNN")
            self.train_x, self.train_y = embed(model, train)
            centroids = torch.stack([F.normalize(self.train_x[self.train_y == c], dim=1).mean(0)
                                     if (self.train_y == c).any() else torch.zeros(self.train_x.shape[1],
                                                                                   device=self.train_x.device)
                                     for c in range(10)])
            if not has_fc:
                self.logits_model = CentroidLogits(model, centroids)

    @property
    def knn_scores(self) -> KnnScores:
        """Built on first use (it measures the embedding's scale over up to 2,000 train points)."""
        if getattr(self, "_knn_scores", None) is None:
            self._knn_scores = KnnScores(self.model, self.train_x, self.train_y, self.k)
        return self._knn_scores

    def attacked_through(self, spec) -> nn.Module:
        """The module an attack's gradients or scores come from: the logits (or the surrogate), or the kNN's."""
        if spec is None or getattr(spec, "via", "logits") == "logits":
            return self.logits_model
        if self.kind != "knn":
            from core.errors import UsageError

            raise UsageError(f"{spec.label} attacks the kNN's scores, but this model predicts by argmax of its logits")
        return self.knn_scores

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        try:
            if self.kind == "argmax":
                return self.model(x).argmax(1)
            return knn_predict(self.train_x, self.train_y, self.model.features(x).float(), self.k).to(x.device)
        finally:
            self.model.train(was_training)
