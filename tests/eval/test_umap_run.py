"""eval/umap_run.py: the UMAP evaluation of a finished run."""
import numpy as np


def test_umap_fits_on_clean_and_transforms_adversarial(tmp_path, monkeypatch):
    """The adversarial points come from transform() on the map fitted to clean features only."""
    import eval.umap_run as rob
    from attacks import AttackSpec
    from experiments import resolve
    from report import run_figures as figures
    from trainers.loop import run

    cfg = resolve("q2-baseline", "demo", pretrained=False, train_size=64, val_size=50, eval_size=40, epochs=1)
    run(cfg, tmp_path / "run", wandb=False)
    calls = {}

    class FakeMap:
        def __init__(self, feats):
            calls["fit"] = feats.copy()
            self.embedding_ = feats[:, :2]

        def transform(self, feats):
            calls["transform"] = feats.copy()
            return feats[:, :2] + 100

    monkeypatch.setattr(rob, "fit_umap", lambda feats, **kw: FakeMap(feats))
    from eval.plan import Evaluation

    report = rob.umap_run(Evaluation("umap", str(tmp_path / "run"), str(tmp_path / "umap.json"),
                                     attacks=[AttackSpec("noise+fgsm")], n=40), figures=figures)
    assert not np.allclose(calls["fit"], calls["transform"])  # fitted on clean, adversarial transformed
    assert np.allclose(np.array(report["adversarial"]["xy"]), calls["transform"][:, :2] + 100)
    assert report["umap"]["fit_on"] == "clean" and len(report["labels"]) == 40
    assert (tmp_path / "umap.png").is_file()
