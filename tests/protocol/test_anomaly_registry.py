"""The anomaly keywords live in one registry: the README's table is that registry, and no
module names a keyword as a bare string beside it."""
from __future__ import annotations

import re
from pathlib import Path

from analyzer.anomalies import MEANINGS, Kind

ROOT = Path(__file__).resolve().parents[2]


def _readme_table() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("| kind | meaning |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        kind, meaning = (cell.strip() for cell in line.strip("|").split("|", 1))
        rows[kind.strip("`")] = meaning
    return rows


def test_readme_table_equals_the_registry():
    assert _readme_table() == {str(k): m for k, m in MEANINGS.items()}


def test_every_keyword_has_a_meaning():
    assert set(MEANINGS) == set(Kind)
    assert all(MEANINGS[k].strip() for k in Kind)


def test_a_keyword_is_the_string_itself():
    assert Kind.RUNT == "runt" and f"{Kind.BAD_LENGTH}" == "bad-length"


def test_no_module_spells_a_keyword_as_a_bare_string():
    quoted = re.compile("|".join(rf"[\"']{re.escape(k)}[\"']" for k in Kind))
    offenders = [f"{p.relative_to(ROOT)}: {m.group(0)}"
                 for p in sorted((ROOT / "analyzer").rglob("*.py"))
                 if p.name != "anomalies.py"
                 for m in quoted.finditer(p.read_text(encoding="utf-8"))]
    assert offenders == []
