"""The kNN evaluation: clean (and adversarial) kNN accuracy of a finished run on its 512-d features, the kNN
fitted on the train embeddings (eval/knn.py predicts, eval/classify.py holds the classifier)."""
from __future__ import annotations

import time

from core.errors import UsageError
from core.io import to_jsonable, write_json
from eval.accuracy import bits, evaluate
from eval.classify import Classifier
from eval.harness import attacked, head, one_writer, provenance_of, setup, source, track
from eval.plan import Evaluation
from loaders.batches import Batches


@one_writer
def knn_run(ev: Evaluation) -> dict:
    """Clean (and adversarial) kNN accuracy on the 512-d features, fitted on the train embeddings."""
    started = time.time()
    results, cfg, model, target, test, described, train = setup(ev)
    train_b = Batches(train, test.batch_size, test.device, image_size=cfg.image_size, precision=test.precision,
                      channels_last=test.channels_last)
    if ev.k > len(train):
        raise UsageError(f"k={ev.k} is larger than the number of training points ({len(train)})")
    # an embedding model's classifier from setup() already holds the train embeddings: reuse it when k agrees
    clf = target if target.kind == "knn" and target.k == ev.k else Classifier(model, train_b, ev.k, knn=True)
    clean = evaluate(clf, test)
    report = {**head(ev, results, cfg), "k": ev.k, "train_points": len(train), "clean_acc": clean["acc"],
              "clean_correct": bits(clean["correct"]), "test": {"n": len(test.labels)}, "results": []}
    src = source(ev, cfg, ev.attacks, test.device)
    report["results"] = [attacked(clf, test, attack, src)[0] for attack in ev.attacks]
    report["provenance"] = provenance_of(test, started)
    write_json(ev.out, report)
    track(ev, to_jsonable(report))
    return to_jsonable(report)
