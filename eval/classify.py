"""What evaluation and attacks see of a model: differentiable logits and a prediction rule.

A model with an fc head predicts by argmax of its logits. An embedding model (Circle Loss, fc removed)
predicts by kNN (k=3) on the train embeddings, as the study did. It has no logits, so white-box
attacks use a differentiable surrogate: cross-entropy over the cosine similarities of the embedding
to the class centroids of the train embeddings, times a fixed scale of 10 (a temperature of 0.1;
sign-gradient attacks depend on it only through the softmax weights).
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
    was_training = model.training
    model.eval()
    feats, labels = [], []
    for x, y in batches.epoch():
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
