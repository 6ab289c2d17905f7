"""The report as data: a Document of one Part per question, each a list of blocks (a Table, sentences,
figures, the honesty checks) and one Section per section entry. report/markdown.py renders it as REPORT.md
and report/wandb.py shows the same Parts in a W&B Report; neither parses the other.

Nothing here is typed by hand: the questions, sections, their order, the study's numbers and the prose come
from the entries the caller passes (experiments/sections.py); every other number is read from
results/<profile>/<section>[/seed-<n>]/*.json. No section is named in this file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from report import checks, figures, prose, tables
from report.load import curve_points, refused, reset, runs, seed_problems


@dataclass
class Text:
    lines: list[str]


@dataclass
class Figures:
    items: list[tuple[str, str]]  # (alt text, link relative to the report)


@dataclass
class Checks:
    flags: list[str]  # one sentence each


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Section:
    heading: str
    prose: str
    blocks: list = field(default_factory=list)


@dataclass
class Part:
    question: object
    blocks: list
    sections: list[Section]


@dataclass
class Document:
    title: str
    blocks: list
    parts: list[Part]


def collect(root: Path, profile, sections: dict, questions: dict, out_dir: Path) -> Document:
    """Read every question's results under root (results/<profile>), draw its figures into out_dir and return
    the report as data."""
    reset()
    preamble = [Text([prose.generated(root, profile)])] + \
        ([Text([prose.banner(profile)])] if prose.banner(profile) else [])
    parts = []
    for q in questions.values():
        secs = {n: s for n, s in sections.items() if s.question == q.name}
        scaled = scaled_fields(profile, q.name)
        parts.append(Part(q, _question(root, q, secs, sections, scaled, out_dir, profile.name),
                          _sections(root, out_dir, secs)))
    problems = refused() + [p for name in sections for p in seed_problems(name, runs(root, name))]
    if problems:  # loud, at the top: results files that are not what their place says, seeds that cannot average
        preamble.append(Text(["**Results files the report left out or could not trust** (each names its file):"]))
        preamble.append(Checks([f"**{p}**" for p in problems]))
    return Document(f"trustlab report · profile `{profile.name}`", preamble, parts)


def scaled_fields(profile, question: str) -> set:
    """The settings a profile scales for a question's sections (and the datasets): not what a method changes."""
    scaled = {k for key, v in profile.scale.items() if key.split(":")[0] == question for k in v}
    return scaled | {"train_on", "eval_on"}  # differ by profile, not by method


def _question(root: Path, q, secs: dict, sections: dict, scaled: set, out_dir: Path, profile: str) -> list:
    """A question's table, figure, honesty checks (and for robustness the eps figure and kNN lines)."""
    m = tables.LAYOUTS[q.layout](root, q, secs)
    flags = Checks([f for n, rs in m.loaded.items() for f in checks.protocol_flags(n, secs[n], rs, sections, scaled,
                                                                                   profile)]
                   + checks.LAYOUTS[q.layout](m, q, secs))
    if q.layout == "domains":
        two = [d for d, _ in tables.datasets(q)[:2]]
        points = {n: [(m.accs[n][d], m.ns[n][d]) for d in two] for n in m.loaded
                  if len(two) == 2 and all(m.accs[n][d] for d in two)}
        drawn = [Figures([figures.domains(points, q, secs, out_dir, m.stand_in)])] if points else []
        return [m.table] + drawn + [flags]
    if q.layout == "targets":
        bars = {n: {d: (s, m.ns[n][d]) for d, s in m.accs[n].items() if s is not None}
                for n in m.loaded if any(s is not None for s in m.accs[n].values())}
        return [m.table] + ([Figures([figures.targets(bars, q, secs, out_dir)])] if bars else []) + [flags]
    rob_files = m.files["robustness.json"]
    eps = figures.eps_models(rob_files, q, out_dir)
    knn = [(n, runs(root, s.name, "knn.json")) for n, s in secs.items() if any(p.file == "knn.json" for p in s.evals)]
    return [Text(prose.robustness_preface(q, rob_files)), m.table, flags] + ([Figures([eps])] if eps else []) + \
        [Text([prose.knn_line(n, k)] + checks.above_clean(n, k, "the kNN under")) for n, k in knn if k]


def _sections(root: Path, out_dir: Path, secs: dict) -> list[Section]:
    out = []
    for name, sec in secs.items():
        section = Section(f"{name}: {sec.title}", sec.prose)
        out.append(section)
        if sec.sweep:
            section.blocks = _curve(root, out_dir, sec)
            continue
        rs = runs(root, sec.name, "metrics.json" if sec.kind != "none" else sec.evals[0].file)
        if rs and sec.kind != "none":
            section.blocks.append(Text([prose.what_ran(rs)]))
        if rs:
            found = prose.run_figures(root, out_dir, name, rs)
            section.blocks += [Text([prose.seeds_line(rs)])] + ([Figures(found)] if found else [])
        else:
            section.blocks.append(Text(["*not run*"]))
        if sec.kind != "none" and any(p.file == "robustness.json" for p in sec.evals):
            card = checks.audit_card(name, runs(root, sec.name, "robustness.json"), runs(root, sec.name, "audit.json"))
            section.blocks += [Text([card[0]]), Bullets(card[1])] if card else []
    return out


def _curve(root: Path, out_dir: Path, sec) -> list:
    """A sweep section: in-domain test accuracy against the number of training images (mean ± std over seeds),
    from results/<profile>/<section>/samples-<n>[/seed-<s>]/metrics.json."""
    found = curve_points(root, sec.name)
    if not found:
        return [Text([f"*not run* (`make {sec.name}`)."])]
    study = sec.overrides.get("train_on", "svhn")
    points, n_test = tables.curve(found, study)
    figure = figures.curve(points, n_test, sec.name, prose.axis_label(study, found[0]), out_dir)
    return [Text([prose.curve_line(study, points, n_test, found)]), Figures([figure])]
