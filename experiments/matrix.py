"""The run matrix: every run a profile plans, and the evaluations of each, in one place (torch-free).

Make's rule generator (experiments/make.py) and the cost planner (experiments/costs.py, `make plan`)
both walk runs(), so they cannot disagree on which folders exist or what each trains: sections x seeds
(Make's SEED, or each of SEEDS in the seed-<s> layout) x curve points (a sweep section's
profile.curve_samples), each with its folder (runs/layout.py), the run it starts from, and its config
resolved as the train and finetune-fc commands resolve it (PRETRAINED and WEIGHTS included).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from core.config import RunConfig
from eval.plan import AttackPlan, Evaluation, KnnPlan, UmapPlan
from experiments.profiles import PROFILES, Profile
from experiments.resolve import KINDS, resolve_training, transfer_source
from experiments.sections import SECTIONS
from runs import layout

# The command that trains a section of each kind (a "none" section trains nothing: it evaluates `needs`).
COMMANDS = {"train": "train", "finetune": "finetune-fc"}


@dataclass(frozen=True)
class Run:
    """One planned run folder."""
    section: str
    seed: int                    # the seed it trains (and its evaluations attack) with
    layout_seed: int | None      # its seed-<s> folder; None: the single-seed layout
    samples: int | None          # its curve point (fine-tuning images); None: not a curve section
    folder: Path
    needs: Path | None           # the run it starts from (finetune) or evaluates (none)
    model: Path                  # the folder whose model its evaluations use: itself, or `needs` for kind "none"
    config: RunConfig            # resolved; for kind "none" the config of the run it evaluates
    notes: tuple[str, ...] = ()  # resolve's notes (e.g. WEIGHTS unused), shown when its command runs

    @property
    def command(self) -> str | None:
        """`cli.py` command that trains it; None when it trains nothing."""
        return COMMANDS.get(SECTIONS[self.section].kind)


def runs(profile: str, results: str | Path = "results", *, seed: int = 0, seeds=(), pretrained: bool = True,
         weights: str | None = None, sections=None) -> Iterator[Run]:
    """Every run of `sections` (default: all) at `profile`, in SECTIONS order. `seeds` non-empty: one run per
    seed in the seed-<s> layout; empty: one run with `seed` in the section's own folder."""
    prof = PROFILES[profile]
    for name in sections or SECTIONS:
        sec = SECTIONS[name]
        for layout_seed in list(seeds) or [None]:
            run_seed = seed if layout_seed is None else layout_seed
            for samples in (prof.curve_samples if sec.sweep else [None]):
                folder = layout.run_dir(results, profile, name, layout_seed, samples)
                needs = layout.run_dir(results, profile, sec.needs, layout_seed) if sec.needs else None
                overrides = dict(seed=run_seed, pretrained=None if pretrained else False, weights=weights)
                if sec.kind == "finetune":
                    overrides.update(init_from=str(needs), finetune_samples=samples)
                cfg, notes = resolve_training(name if sec.kind != "none" else sec.needs, profile,
                                              command=COMMANDS.get(sec.kind, "train"), **overrides)
                yield Run(name, run_seed, layout_seed, samples, folder, needs,
                          needs if sec.kind == "none" else folder, cfg, notes)


def steps(run: Run, prof: Profile) -> Iterator:
    """The evaluation steps of the run's section that `prof` runs: all of them, less AutoAttack and the audit
    for a section outside the profile's audit_sections (the demo audits two models)."""
    for step in SECTIONS[run.section].evals:
        audit = isinstance(step, AttackPlan) and step.audit
        if audit and prof.audit_sections is not None and run.section not in prof.audit_sections:
            continue
        yield step


def evaluation(run: Run, step, prof: Profile, source: str | None = None) -> Evaluation:
    """The Evaluation a section's plan step (AttackPlan, KnnPlan, UmapPlan) makes of `run` at the scale of
    `prof`: its attacks at the run's seed, the test subset and eps sweep radii the profile gives, and the transfer source
    (`source`, Make's SOURCE, else transfer_source's default)."""
    kind = next(k for k, plan in KINDS.items() if isinstance(step, plan))
    specs = [replace(s, seed=run.seed).validate() for s in step.specs]
    transfer = any(s.threat == "transfer" for s in specs)
    source = (source or transfer_source(run.model, run.config)) if transfer else None
    attack = isinstance(step, AttackPlan)
    n = getattr(prof, step.subset) if attack and step.subset else prof.umap_points if isinstance(step, UmapPlan) \
        else None
    return Evaluation(kind=kind, model=str(run.model), out=str(run.folder / step.file), attacks=specs,
                      eps_sweep=[float(e) for e in step.eps_sweep if prof.sweep_radii is None
                                 or round(e * 255, 6) in prof.sweep_radii] if attack else [],
                      sweep_methods=list(step.sweep_methods) if attack else [], audit=attack and step.audit,
                      square_queries=prof.square_queries if attack and step.audit else Evaluation.square_queries,
                      source=source, n=n,
                      k=step.k if isinstance(step, KnnPlan) else Evaluation.k, seed=run.seed)
