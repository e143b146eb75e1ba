"""JSON Schemas of the reports, shipped with the package so that users can check theirs.

``report.schema.json`` (extract, summary), ``audit.schema.json`` (audit: the report plus an
``audit`` object per dump) and ``inspect.schema.json`` (inspect). Plain JSON files: nothing
here needs a validator at run time.

Each shipped file stands alone: a plain ``jsonschema.validate(report, schema)`` needs no
registry and fetches nothing. The schemas are written once, in ``parts/``, referring to each
other by name; :func:`bundle` embeds every schema a part refers to in its ``$defs`` (with its
own ``$id``, the JSON Schema 2020-12 way of bundling), and ``python -m analyzer.schemas``
writes the shipped files from the parts (a test checks they are up to date).
"""
from __future__ import annotations

import json
from importlib import resources

NAMES = ("report", "audit", "inspect")
SUFFIX = ".schema.json"


def schema_text(name: str) -> str:
    return resources.files(__name__).joinpath(f"{name}{SUFFIX}").read_text("utf-8")


def load(name: str) -> dict:
    """The schema for the ``name`` report ("report", "audit" or "inspect")."""
    return json.loads(schema_text(name))


def _part(name: str) -> dict:
    return json.loads(resources.files(__name__).joinpath("parts", f"{name}.json")
                      .read_text("utf-8"))


def _refers_to(node) -> set[str]:
    """The other schemas (by name) a part's ``$ref`` values point into."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
                found.add(value.split("#")[0].removesuffix(SUFFIX))
            else:
                found |= _refers_to(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refers_to(value)
    return found


def bundle(name: str) -> dict:
    """The part ``name`` with every schema it refers to embedded under ``$defs``."""
    doc = _part(name)
    for other in sorted(_refers_to(doc)):
        embedded = bundle(other)
        embedded.pop("$schema", None)
        doc.setdefault("$defs", {})[f"{other}{SUFFIX}"] = embedded
    return doc


def bundled_text(name: str) -> str:
    return json.dumps(bundle(name), indent=2) + "\n"



def write_shipped() -> None:
    """Write the shipped, self-contained files from the parts (``python -m analyzer.schemas``)."""
    import pathlib
    here = pathlib.Path(__file__).parent
    for n in NAMES:
        (here / f"{n}{SUFFIX}").write_text(bundled_text(n), encoding="utf-8")
