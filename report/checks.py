"""The honesty checks under each question's table, and the audit card of each model: sentences, each judged by
eval/stats.py's one `verdict` (or read from eval/audit.py's checks), never by a threshold of their own.

The robustness flags are the audit's own rules applied to robustness.json's columns: "PGD above FGSM" is
check 1's, "above AutoAttack" check 3's upper side, and "transfer overstates" the upper side of check 7's
comparison (eval.audit.transfer_verdict).
"""
from __future__ import annotations

from eval.audit import (
    FGSM,
    OUTCOMES,
    PGD10,
    accuracy_under,
    audit_checks,
    compare,
    model_autoattack,
    robust,
    sweep_checks,
    test_n,
    transfer_verdict,
)
from eval.stats import ALPHA, BOOTSTRAP_REPS, paired_bootstrap, reaches, stats, verdict
from report.load import key
from report.tables import Measured, datasets

STAND_IN = "Δ against the study is left out: these runs use stand-in data (see the banner)."
_ATTACK_NAMES = {("white-box", "pgd"): "white-box PGD-10", ("white-box", "fgsm"): "white-box FGSM",
                 ("white-box", "noise+fgsm"): "white-box noise+FGSM", ("transfer", "pgd"): "transfer PGD-10",
                 ("transfer", "fgsm"): "transfer FGSM", ("transfer", "noise+fgsm"): "transfer noise+FGSM"}


def paired_gain(rs: list[dict], base_rs: list[dict], study: str):
    """The paired bootstrap (eval/stats.py) of a section against its comparison on one dataset's test images,
    seed by seed, over the seeds both ran (a seed run on one side only has nothing to pair with; the verdict's
    `seeds` says how many were pooled), when each of those seeds stored per-image records of one test set, the
    same on both sides and for every seed; None otherwise. The same test set: the same dataset, size and data
    seed (which draws the stratified subset); not the same path to its files, which differs between machines and
    between a relative and an absolute --data-root."""
    def records(runs_):
        def test_set(r):
            described = dict((r.get("datasets") or {}).get(key(r, study, "_test")) or {})
            described.pop("source", None)
            return described, (r.get("config") or {}).get("data_seed")
        return {r.get("seed"): ((r.get("correct") or {}).get(key(r, study, "_test")), test_set(r)) for r in runs_}
    ours, theirs = records(rs), records(base_rs)
    both = sorted(set(ours) & set(theirs), key=str)
    if not both or any(ours[s][1] != theirs[s][1] or ours[s][1] != ours[both[0]][1] for s in both):
        return None  # the bootstrap pairs every seed's images with every other's: one test set for all
    return paired_bootstrap([(ours[s][0], theirs[s][0]) for s in both])


def _seeds(k: int) -> str:
    return f"{k} seed" + ("" if k == 1 else "s")


def noise_flags(name: str, base_name: str, pairs, rerun: str) -> list[str]:
    """Section `name` against `base_name`, per (label, ours stats, base stats, n ours, n base[, paired verdict]):
    judged by the paired bootstrap on per-image records when given, else by verdict (with both test-set sizes,
    against the larger of the seed spread and the binomial interval, so one seed is judged too; without them,
    by Welch's t test on the seeds; with one seed the noise is unknown)."""
    flags, beyond = [], []
    for label, ours, base, n_a, n_b, *paired in pairs:
        if not ours or not base:
            continue
        v = (paired[0] if paired else None) or verdict(ours, base, n_a, n_b)
        head = f"{name} vs {base_name} on {label}: {v.difference:+.2f} points"
        if v.test == "paired bootstrap":
            some = (f" ({'the one' if v.seeds == 1 else 'the ones'} both ran; the table's means are over "
                    f"{ours[2]} and {base[2]})" if (ours[2], base[2]) != (v.seeds, v.seeds) else "")
            how = ", drawing seeds and images" if v.seeds > 1 else ""
            why = (f"paired bootstrap over the same {n_a:,} test images and {_seeds(v.seeds)}{some}{how}: 95% "
                   f"interval of the difference ±{v.noise:.2f}, "
                   + (f"p < {1 / BOOTSTRAP_REPS:g}" if v.p == 0 else f"p = {v.p:.2g}"))
            flags.append(f"{head}, " + (f"**beyond noise** ({why})." if v.beyond else f"within noise ({why})."))
        elif v.test == "binomial":
            why = (f"noise ±{v.noise:.2f}: the larger of the seed spread ({_seeds(min(ours[2], base[2]))}) and the "
                   f"95% binomial interval of {n_a:,} and {n_b:,} test images")
            flags.append(f"{head}, " + (f"**beyond noise** ({why})." if v.beyond else f"within noise ({why})."))
        elif v.beyond:
            beyond.append(f"{label} {v.difference:+.2f} (p = {v.p:.2g})")
        elif v.beyond is False:
            flags.append(f"{head}, **within seed noise** (Welch's t test over {ours[2]} and {base[2]} seeds: 95% "
                         f"interval ±{v.noise:.2f}, p = {v.p:.2g}).")
        else:
            flags.append(f"{head}; seed noise unknown with one seed (run `{rerun}`).")
    if beyond:
        flags.append(f"{name} vs {base_name}, beyond seed noise (Welch's t test, p < {ALPHA:g}): "
                     + ", ".join(beyond) + " points.")
    return flags


def _changes(sec, sections: dict, scaled: set) -> dict:
    """What a section changes of its comparison section, beyond a profile's scale: setting -> (the section's value,
    the comparison's), both as a results file records them."""
    from core.config import RunConfig

    base = sections.get(sec.compare_to)
    if base is None:
        return {}
    pairs = {k: (_comparable(v), _comparable(base.overrides.get(k, getattr(RunConfig, k, None))))
             for k, v in sec.overrides.items() if k not in scaled}
    return {k: (ours, theirs) for k, (ours, theirs) in pairs.items() if ours != theirs}


def _undone(r: dict, changes: dict) -> bool:
    """Whether run r holds the comparison section's value of every setting its section changes."""
    return bool(changes) and all(_ran(r, k, ours) == theirs for k, (ours, theirs) in changes.items())


def _ran(r: dict, k: str, default):
    """Setting k as run r's config records it (default where the file predates it)."""
    return _comparable((r.get("config") or {}).get(k, default))


def _comparable(value):
    return tuple(value) if isinstance(value, list) else value  # JSON gives lists for tuples


def _seeds_of(rs: list[dict]) -> str:
    seeds = [str(r.get("seed", "?")) for r in rs]
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}"


# What a run may differ in from its section at its profile and still be reported as it: which seed, how it started
# (ImageNet weights or not, read from where: PRETRAINED=0 on a CPU; each section's what-ran line states it), and
# which test sets it measured (its cells say which, and on how many images)
_NOT_PROTOCOL = ("preset", "profile", "seed", "version", "pretrained", "weights", "init_from", "eval_on",
                 "optional_eval", "eval_size")


def protocol_flags(name: str, sec, rs: list[dict], sections: dict, scaled: set, profile: str) -> list[str]:
    """How a section's runs differ from the section, read from their recorded configs (a file with no config says
    nothing of how it ran):
    - runs that hold its comparison section's value of every setting the section changes (e.g. PRETRAINED=0 under
      the ImageNet-initialisation section) are that section again by construction and test nothing;
    - runs trained with settings the section does not give at this profile (a shortened schedule through
      EXTRA="--epochs 90", another lr, a change only partly undone) are off its protocol: the row carries the
      section's name, so the flag says which settings, for which seeds."""
    from core.config import saved_method
    from core.io import to_jsonable
    from experiments.resolve import resolve

    expected = to_jsonable(resolve(name, profile).method())
    changes = _changes(sec, sections, scaled)
    undone, off = [], {}
    for r in (r for r in rs if r.get("config")):
        saved, told = saved_method(r["config"]), set()
        if _undone(r, changes):
            undone.append(r)
            told = set(changes)  # said by the "again by construction" flag
        for k, want in expected.items():
            if k not in _NOT_PROTOCOL and k not in told and saved.get(k, want) != want:
                off.setdefault(f"{k}={saved[k]} where it sets {k}={want}", []).append(r)
    flags = []
    if undone:
        ran = " and ".join(f"{k}={theirs}" for k, (_, theirs) in changes.items())
        sets = " and ".join(f"{k}={ours}" for k, (ours, _) in changes.items())
        flags.append(f"{name} ran with {ran} where the section sets {sets} ({_seeds_of(undone)}), so it is "
                     f"{sec.compare_to} again by construction; its row says nothing about that change.")
    if off:
        flags.append(f"**{name} ran off its protocol**: " + "; ".join(f"{what} ({_seeds_of(s)})" for what, s in
                                                                      off.items())
                     + f" at the {profile} profile. Its row is those runs, not the section as it is defined.")
    return flags


def chance(name: str, clean, n: int | None, classes: int = 10, what: str = "clean accuracy") -> list[str]:
    """An accuracy whose 95% interval reaches chance (1/classes) or lies below it is no better than guessing."""
    if clean is None or not n or not reaches(clean[0], n, 100 / classes):
        return []
    tail = ": its robustness numbers mean nothing." if what == "clean accuracy" else "."
    return [f"{name}: {what} {clean[0]:.2f}% on {n:,} images is **at or below chance** ({100 / classes:.0f}% for "
            f"{classes} classes; its 95% interval reaches it){tail}"]


def domains(m: Measured, q, secs: dict) -> list[str]:
    flags = []
    for name, rs in m.loaded.items():
        sec, accs, ns = secs[name], m.accs[name], m.ns[name]
        if sec.compare_to in m.loaded and rs:
            base = sec.compare_to
            flags += noise_flags(name, base, [(lab, accs[d], m.accs[base][d], ns[d], m.ns[base][d],
                                               paired_gain(rs, m.loaded[base], d)) for d, lab in datasets(q)], q.rerun)
        for d, lab in datasets(q):
            flags += chance(f"{name} on {lab}", accs[d], ns[d], what="accuracy")
    return flags + ([STAND_IN] if m.stand_in else [])


def targets(m: Measured, q, secs: dict) -> list[str]:
    """Each method's gain over the section it compares to, and over those it is also compared to (RandConv mix
    against img, Pro-RandConv against RandConv), per dataset measured on both sides."""
    flags = []
    for name, rs in m.loaded.items():
        for base in (secs[name].compare_to, *secs[name].also_compare_to):
            if m.loaded.get(base) and rs:
                pairs = [(lab, m.accs[name][d], m.accs[base][d], m.ns[name][d], m.ns[base][d],
                          paired_gain(rs, m.loaded[base], d)) for d, lab in datasets(q)]
                flags += noise_flags(name, base, [p for p in pairs if p[3] and p[4]], q.rerun)
    return flags


def robustness(m: Measured, q, secs: dict) -> list[str]:
    dataset, flags = datasets(q)[0][0], []
    rob_files, aud_files = m.files["robustness.json"], m.files["audit.json"]
    for name, rs in m.loaded.items():
        sec, cells, ns = secs[name], m.cells[name], m.ns[name]
        rob, aud, n_rob = rob_files[name], aud_files[name], ns["robustness.json"]
        base = sec.compare_to
        if base in m.cells and rs:
            flags += noise_flags(name, base, [
                (lab, cells[c], m.cells[base][c], ns[n_of], m.ns[base][n_of])
                for lab, c, n_of in (("clean accuracy", "clean", dataset), ("white-box FGSM", ("white-box", "fgsm"),
                                     "robustness.json"), ("white-box PGD", ("white-box", "pgd"), "robustness.json"))],
                q.rerun)
        if any(row.get("threat_model") == "transfer" and row.get("source") == r.get("model")
               for r in rob for row in r.get("results", [])):
            flags.append(f"{name}: its transfer attacks were crafted on the model itself (PRETRAINED=0 makes its "
                         "trained transfer-source run the source), so its transfer columns are white-box by "
                         "construction.")
        flags += chance(name, cells["clean"], ns[dataset])
        flags += above_autoattack(name, cells, rob, aud)
        wf, wp = cells[("white-box", "fgsm")], cells[("white-box", "pgd")]
        v = compare(rob, {"method": "pgd"}, FGSM, n_rob) if wf and wp and n_rob else None
        if v and v.above:  # audit check 1's rule
            flags.append(f"{name}: white-box PGD ({wp[0]:.2f}%) is above white-box FGSM ({wf[0]:.2f}%) beyond the "
                         f"noise ({v.said()} on {n_rob:,} images): **suspect** (PGD should be the stronger "
                         "attack; look for gradient masking or a bug; see the audit card).")
        flags += knn_explained(name, aud)
        for method in ("fgsm", "noise+fgsm", "pgd"):
            t, w = cells[("transfer", method)], cells[("white-box", method)]
            v = transfer_verdict(rob, method, n_rob) if t and w else None
            if v and v.above:  # the upper side of audit check 7's comparison
                flags.append(f"{name}: transfer {method} {t[0]:.2f}% vs white-box {w[0]:.2f}%: a gap of "
                             f"{v.difference:.1f} points, beyond the noise ({v.said()}). **Transfer robustness "
                             "overstates the model's robustness**; quote the white-box number as its robustness.")
        flags += [note.format(**sec.reference) for note in sec.notes]
    return flags + ([STAND_IN] if m.stand_in else [])


LAYOUTS = {"domains": domains, "targets": targets, "robustness": robustness}


def knn_explained(name: str, aud: list[dict]) -> list[str]:
    """For a kNN model: the surrogate's white-box numbers beside the attacks on the kNN itself, and whether the
    surrogate overstated the kNN's robustness beyond the noise."""
    if not aud or not all(a.get("prediction") == "knn" for a in aud):
        return []
    n = test_n(aud)
    via_surrogate = robust(aud, "pgd", steps=10)
    on_knn = [(robust(aud, **key), key, lab) for key, lab in (
        ({"method": "pgd", "steps": 50, "via": "knn"}, "PGD-50 on the kNN's score"),
        ({"method": "square", "threat": "black-box", "via": "knn"}, "Square on the kNN's scores"),
        ({"method": "autoattack", "via": "knn"}, "AutoAttack on the kNN's scores"))]
    on_knn = [t for t in on_knn if t[0] is not None]
    if not via_surrogate or not on_knn or not n:
        return []
    best, key, lab = min(on_knn, key=lambda t: t[0][0])
    v = compare(aud, PGD10, {**key, "threat": key.get("threat", "white-box")}, n)
    said = (f"**the surrogate overstated the kNN's robustness by {v.difference:.2f} points** (beyond the noise, "
            f"{v.said()}): the centroid surrogate is not the kNN's decision rule, so its gradients point only "
            "roughly where the kNN's decision changes, and more PGD steps can overfit the surrogate (which is how PGD "
            "can come out above FGSM); quote the attacks on the kNN"
            if v.above else f"within the noise ({v.said()}): the surrogate did not overstate it here")
    return [f"{name} predicts by kNN. On the audit's {n:,} images, PGD-10 through the centroid surrogate leaves "
            f"{via_surrogate[0]:.2f}%; attacking the kNN itself, {lab} leaves {best[0]:.2f}%: {said}."]


def above_clean(name: str, files: list[dict], what: str) -> list[str]:
    """An attack leaves accuracy above the clean accuracy on the same images: beyond the noise (the paired McNemar
    test on the per-image records where stored) no honest attack does that, so the number is **suspect**; within
    the noise it is said, so no robust accuracy stands above clean unremarked."""
    n = test_n(files)
    clean = stats([f["clean_acc"] for f in files if "clean_acc" in f])
    if not n or clean is None:
        return []
    flags = []
    for threat, method in dict.fromkeys((r.get("threat_model"), r.get("method")) for f in files
                                        for r in f.get("results", [])):
        key = {"method": method, "threat": threat}
        acc = robust(files, method, threat)
        if acc is None or acc[0] <= clean[0]:
            continue
        v = compare(files, key, {"method": "clean"}, n)
        flags.append(f"{name}: {what} {threat} {method} leaves {acc[0]:.2f}%, above the clean {clean[0]:.2f}% on the "
                     f"same {n:,} images: " + (f"beyond the noise ({v.said()}): **suspect** (an attack never helps "
                                              "the model; look for a bug or a randomised prediction)" if v.above else
                                              f"within the noise ({v.said()})") + ".")
    return flags


def above_autoattack(name: str, cells: dict, rob: list[dict], aa: list[dict]) -> list[str]:
    """Any robust-accuracy column above AutoAttack's beyond the noise overstates the model's robustness (audit
    check 3's upper side): flag it, so no number in the table stands above AutoAttack unflagged."""
    key, aa_label = model_autoattack(aa)  # a kNN model's: the one on the kNN's scores
    a, n_a, n_r = accuracy_under(aa, key), test_n(aa), test_n(rob)
    flags = []
    for c, lab in _ATTACK_NAMES.items():
        w = cells[c]
        if a is None or w is None or not n_a or not n_r:
            continue
        v = verdict(w, a, n_r, n_a)
        if v.above:
            flags.append(f"{name}: {lab} {w[0]:.2f}% is above {aa_label} ({a[0]:.2f}%) by {v.difference:.2f} "
                         f"points, beyond the test-set noise ({v.said()} on {n_r:,} and {n_a:,} images): **{lab} "
                         f"overstates this model's robustness; quote {aa_label}.**")
    return flags


def audit_card(name: str, rob: list[dict], aud: list[dict]) -> tuple[str, list[str]] | None:
    """The gradient-masking audit of one model (eval/audit.py's checks): a head line, and each check with its
    numbers and a pass, a flag or "inconclusive"; None without checks."""
    checks = sorted(audit_checks(aud) + sweep_checks(rob), key=lambda c: c["check"])
    if not checks:
        return None
    flagged = sum(c["passed"] is False for c in checks)
    undecided = sum(c["passed"] is None for c in checks)
    where = ([f"checks 1-4, 6 and 8 on the audit's {test_n(aud):,} images"] if aud and test_n(aud) else []) + \
        ([f"5 and 7 on robustness.json's {test_n(rob):,}"] if rob and test_n(rob) else []) + \
        ([] if aud else ["AutoAttack and checks 1-4, 6 and 8 not run for this model at this profile"])
    head = (f"Gradient-masking audit of {name}: {sum(c['passed'] is True for c in checks)} of {len(checks)} checks pass"
            + (f", **{flagged} flagged**" if flagged else "") + (f", {undecided} inconclusive" if undecided else "")
            + (f" ({'; '.join(where)})" if where else "") + ":")
    word = {k: f"**{w}**" if k is False else w for k, w in OUTCOMES.items()}
    return head, [f"{c['check']}. {c['title']}: {c['detail']}: {word[c['passed']]}" for c in checks] + \
        autoattack_breakdown(aud)


def autoattack_breakdown(aud: list[dict]) -> list[str]:
    """AutoAttack's robust accuracy after each of its attacks (cumulative, mean over seeds), and its own warnings."""
    rows = [row for a in aud for row in a.get("results", []) if row.get("breakdown")]
    if not rows:
        return []
    lines = []
    for via in sorted({row.get("via", "logits") for row in rows}):
        mine = [row for row in rows if row.get("via", "logits") == via]
        steps = [(entry["attack"], stats([r["breakdown"][i]["robust_acc"] for r in mine]))
                 for i, entry in enumerate(mine[0]["breakdown"])]
        lines.append(f"{mine[0].get('label', 'AutoAttack')} on {mine[0]['n']:,} images, robust accuracy after each "
                     "attack (cumulative): " + ", ".join(f"{a} {s[0]:.2f}%" for a, s in steps))
    warned = sorted({w for row in rows for w in row.get("warnings", [])})
    lines += [f"AutoAttack's own check warns: {w}" for w in warned]
    return lines
