"""The report's tables as data: one Table per question, rows of Cells that hold a number with what it rests
on (the mean, the seed std and count, the test images and the 95% interval), the study's number, a
difference, or why no number stands there. Nothing here is markdown: report/markdown.py renders a Table,
report/wandb.py shows the same one, and the checks and figures read the same measurements.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eval.audit import accuracy_under, model_autoattack, robust, test_n, worst
from eval.stats import average_half_width, stats, wilson
from loaders.registry import label
from report.load import key, metric, runs, skipped, test_size, used_stand_ins

ROBUST_COLUMNS = [(t, m) for t in ("white-box", "transfer") for m in ("fgsm", "pgd")]
ATTACKED = [(t, m) for t in ("white-box", "transfer") for m in ("fgsm", "pgd", "noise+fgsm")]


@dataclass(frozen=True)
class Cell:
    """One cell. kind "ours": a mean over `seeds` runs (std nan with one), measured on n test images (None:
    unknown) whose 95% Wilson interval it carries; "study": a published number; "delta": ours − study;
    "text": no number, and `text` says why ("not run", "not evaluated", "skipped (data missing)", "–")."""
    kind: str
    value: float | None = None
    std: float = float("nan")
    seeds: int = 0
    n: int | None = None
    digits: int = 2
    over: tuple[str, ...] = ()       # an average: the datasets it covers
    half_width: float | None = None  # an average: its 95% half-width (the targets' binomial variances)
    attack: str = ""                 # a worst case: the attack that found it
    text: str = ""

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% Wilson interval of the mean: every seed is tested on the same n images, so n, not n x seeds."""
        return wilson(self.value, self.n) if self.kind == "ours" and self.n else None

    def __str__(self) -> str:
        """The cell as it reads: "mean ± std (n=seeds), N imgs, 95% [lo, hi]" for ours, and so on."""
        d = self.digits
        if self.kind == "text":
            return self.text
        if self.kind == "study":
            return f"{self.value:.{d}f}"
        if self.kind == "delta":
            return f"{self.value:+.{d}f}"
        out = (f"{self.value:.{d}f} ± {self.std:.{d}f} (n={self.seeds})" if self.seeds > 1
               else f"{self.value:.{d}f} (n=1)")
        if self.over:
            out += f" over {', '.join(self.over)}"
        if self.half_width is not None:
            out += f", 95% ±{self.half_width:.1f}"
        if self.interval:
            out += f", {self.n:,} imgs, 95% [{self.interval[0]:.1f}, {self.interval[1]:.1f}]"
        return out + (f" ({self.attack})" if self.attack else "")


@dataclass
class Row:
    name: str
    cells: list  # a Cell, or a tuple of Cells shown together in one column ("study / ours")


@dataclass
class Table:
    columns: list[str]
    rows: list[Row] = field(default_factory=list)


def ours(rs: list, s, n: int | None = None, digits: int = 2, **extra) -> Cell:
    """Our number: "not run" without results, "not evaluated" when the runs lack the metric."""
    if s is None:
        return Cell("text", text="not evaluated" if rs else "not run")
    return Cell("ours", s[0], s[1], s[2], n, digits, **extra)


def study(ref, digits: int = 2) -> Cell:
    return Cell("text", text="–") if ref is None else Cell("study", ref, digits=digits)


def delta(s, ref, stand_in: bool = False) -> Cell:
    """ours − the study's; left out ("–") under stand-in data, where the two are not comparable."""
    return Cell("text", text="–") if s is None or ref is None or stand_in else Cell("delta", s[0] - ref)


def datasets(q) -> list[tuple[str, str]]:
    """A question's datasets as (name, column label): the question's label, else the registry's."""
    return [(e[0], e[1]) if isinstance(e, tuple) else (e, label(e)) for e in q.datasets]


def table_rows(secs: dict) -> dict:
    """The sections a question's table shows: those that train a model once per seed (no sweeps)."""
    return {n: s for n, s in secs.items() if s.kind != "none" and not s.sweep}


@dataclass
class Measured:
    """A question's table and what it was built from, per section: the loaded runs, each dataset's stats and
    test-set size (domains, targets), the attack columns (robustness)."""
    table: Table
    loaded: dict
    stand_in: bool
    accs: dict = field(default_factory=dict)   # section -> {dataset: stats}
    ns: dict = field(default_factory=dict)     # section -> {dataset: test images}
    cells: dict = field(default_factory=dict)  # robustness: section -> {(threat, method) or "clean": stats}
    files: dict = field(default_factory=dict)  # robustness: {"robustness.json": {section: runs}, "audit.json": ...}


def _per_dataset(m: Measured, name: str, rs: list, q) -> None:
    m.accs[name] = {d: metric(rs, d, "_test_acc") for d, _ in datasets(q)}
    m.ns[name] = {d: test_size(rs, d) for d, _ in datasets(q)}


def domains(root: Path, q, secs: dict) -> Measured:
    """In-domain and out-of-domain test accuracy per section, with train loss and accuracy."""
    cols = datasets(q)
    loaded = {n: runs(root, s.name) for n, s in table_rows(secs).items()}
    m = Measured(Table(["section"] + [c for _, lab in cols for c in (f"{lab} study", f"{lab} ours", "Δ")]
                       + ["train loss study / ours", "train acc study / ours"]), loaded, used_stand_ins(loaded))
    for name, rs in loaded.items():
        ref = secs[name].reference
        _per_dataset(m, name, rs, q)
        accs, ns = m.accs[name], m.ns[name]
        loss, acc = (stats([r["metrics"].get(f) for r in rs]) if rs else None for f in ("train_loss", "train_acc"))
        cells = [c for d, _ in cols for c in (study(ref.get(f"{d}_test_acc")), ours(rs, accs[d], ns[d]),
                                              delta(accs[d], ref.get(f"{d}_test_acc"), m.stand_in))]
        m.table.rows.append(Row(name, cells + [(study(ref.get("train_loss"), 3), ours([], loss, digits=3)),
                                               (study(ref.get("train_acc")), ours([], acc))]))
    return m


def targets(root: Path, q, secs: dict) -> Measured:
    """Per-target test accuracy (the first dataset is the source) and the average over the targets present,
    beside the published rows."""
    (source, source_label), tgts = datasets(q)[0], datasets(q)[1:]
    loaded = {n: runs(root, s.name) for n, s in table_rows(secs).items()}
    m = Measured(Table(["section", f"{source_label} ours"]
                       + [f"{lab} {w}" for _, lab in tgts for w in ("published", "ours")]
                       + ["average published", "average ours (targets present)"]), loaded, used_stand_ins(loaded))
    for name, rs in loaded.items():
        ref = secs[name].reference
        _per_dataset(m, name, rs, q)
        accs, ns = m.accs[name], m.ns[name]
        present = [d for d, _ in tgts if accs[d] is not None]
        avg = stats([sum(r["metrics"][key(r, d, "_test_acc")] for d in present) / len(present)
                     for r in rs if all(key(r, d, "_test_acc") in r["metrics"] for d in present)]) if present else None
        half = (average_half_width([accs[d][0] for d in present], [ns[d] for d in present])
                if present and all(ns.get(d) for d in present) else None)
        cells = [c for d, _ in tgts for c in (
            study(ref.get(f"{d}_test_acc")),
            Cell("text", text="skipped (data missing)") if rs and accs[d] is None and skipped(rs, d)
            else ours(rs, accs[d], ns[d]))]
        m.table.rows.append(Row(name, [ours(rs, accs[source], ns[source])] + cells + [
            study(ref.get("average_test_acc")),  # as published, over all four targets
            ours(rs, avg, over=tuple(present), half_width=half)]))
    return m


def robustness(root: Path, q, secs: dict) -> Measured:
    """Clean accuracy, the study's adversarial number and ours under the same protocol, the white-box and
    transfer FGSM/PGD columns, AutoAttack and the worst case over every attack, per trained section (each with
    its test images and 95% interval)."""
    dataset = datasets(q)[0][0]
    rows = table_rows(secs)
    loaded = {n: runs(root, s.name) for n, s in rows.items()}
    files = {f: {n: runs(root, s.name, f) for n, s in rows.items()} for f in ("robustness.json", "audit.json")}
    m = Measured(Table(["section", "clean study", "clean ours", "Δ", "adversarial study", "transfer noise+FGSM ours",
                        "Δ", "white-box FGSM", "white-box PGD", "transfer FGSM", "transfer PGD", "AutoAttack, standard",
                        "worst case (attack)"]), loaded, used_stand_ins(loaded), files=files)
    for name, rs in loaded.items():
        ref = secs[name].reference
        rob, aud = files["robustness.json"][name], files["audit.json"][name]
        n_rob, n_aud = test_n(rob), test_n(aud)
        cells = {c: robust(rob, c[1], c[0]) for c in ATTACKED}
        cells["clean"] = metric(rs, dataset, "_test_acc")
        m.cells[name] = cells
        m.ns[name] = {dataset: test_size(rs, dataset), "robustness.json": n_rob, "audit.json": n_aud}
        low = worst(aud)
        tr = cells[("transfer", "noise+fgsm")]
        m.table.rows.append(Row(name, [
            study(ref.get(f"{dataset}_test_acc")), ours(rs, cells["clean"], m.ns[name][dataset]),
            delta(cells["clean"], ref.get(f"{dataset}_test_acc"), m.stand_in),
            study(ref.get("adversarial")), ours(rob, tr, n_rob), delta(tr, ref.get("adversarial"), m.stand_in)]
            + [ours(rob, cells[c], n_rob) for c in ROBUST_COLUMNS]
            + [ours([], accuracy_under(aud, model_autoattack(aud)[0]), n_aud),
               ours([], low[0] if low else None, n_aud, attack=low[1] if low else "")]))
    return m


LAYOUTS = {"domains": domains, "targets": targets, "robustness": robustness}


def curve(found: list[dict], study_name: str) -> tuple[list[tuple[int, tuple]], int | None]:
    """A curve section's points: (training images, stats of the in-domain test accuracy over seeds), and the
    test images they share."""
    by_size: dict = {}
    for r in found:
        by_size.setdefault(r["datasets"]["train"]["size"], []).append(r["metrics"].get(key(r, study_name, "_test_acc")))
    return [(size, stats(v)) for size, v in sorted(by_size.items())], test_size(found, study_name)
