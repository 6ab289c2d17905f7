"""REPORT.md: the Document (report/document.py) rendered as markdown; the only file that knows its syntax."""
from __future__ import annotations

from report.document import Bullets, Checks, Document, Figures, Part, Section, Text
from report.tables import Table


def table(t: Table) -> list[str]:
    def cell(c) -> str:
        return " / ".join(map(str, c)) if isinstance(c, tuple) else str(c)

    return [f"| {' | '.join(t.columns)} |", "|" + "---|" * len(t.columns)] + \
        [f"| {row.name} | {' | '.join(cell(c) for c in row.cells)} |" for row in t.rows]


def block(b) -> list[str]:
    if isinstance(b, Table):
        return table(b)
    if isinstance(b, Text):
        return list(b.lines)
    if isinstance(b, Figures):
        return [f"![{alt}]({link})" for alt, link in b.items]
    if isinstance(b, Checks):
        return ["### Honesty checks", ""] + ([f"- {f}" for f in b.flags] or ["- nothing to compare yet"])
    if isinstance(b, Bullets):
        return [f"- {item}" for item in b.items]
    raise TypeError(f"no markdown for a {type(b).__name__} block")


def section(s: Section) -> list[str]:
    lines = ["", f"### {s.heading}", "", s.prose, ""]
    for i, b in enumerate(s.blocks):
        lines += ([""] if i else []) + block(b)
    return lines


def part(p: Part) -> list[str]:
    """A question without its heading: its intro, blocks and sections (what the W&B Report shows under its H1)."""
    lines = [p.question.intro]
    for b in p.blocks:
        lines += [""] + block(b)
    for s in p.sections:
        lines += section(s)
    return lines


def render(doc: Document) -> str:
    lines = [f"# {doc.title}"]
    for b in doc.blocks:
        lines += [""] + block(b)
    for p in doc.parts:
        lines += ["", f"## {p.question.title}", ""] + part(p)
    return "\n".join(lines) + "\n"
