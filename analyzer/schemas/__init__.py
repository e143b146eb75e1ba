"""JSON Schemas of the reports, shipped with the package so that users can check theirs.

``report.schema.json`` (extract, summary), ``audit.schema.json`` (audit: the report plus an
``audit`` object per dump) and ``inspect.schema.json`` (inspect). Plain JSON files: nothing
here needs a validator at run time.
"""
from __future__ import annotations

import json
from importlib import resources

NAMES = ("report", "audit", "inspect")


def schema_text(name: str) -> str:
    return resources.files(__name__).joinpath(f"{name}.schema.json").read_text("utf-8")


def load(name: str) -> dict:
    """The schema for the ``name`` report ("report", "audit" or "inspect")."""
    return json.loads(schema_text(name))
