"""Check a report against the JSON Schema shipped for it (analyzer/schemas)."""
from __future__ import annotations

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from analyzer.schemas import NAMES, load

_SCHEMAS = {name: load(name) for name in NAMES}
_REGISTRY = Registry().with_resources(
    (s["$id"], Resource.from_contents(s)) for s in _SCHEMAS.values())


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(_SCHEMAS[name], registry=_REGISTRY,
                                format_checker=FormatChecker())


def errors(report: dict, name: str) -> list[str]:
    """Every way ``report`` breaks the ``name`` schema, one line each (empty when valid)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in validator(name).iter_errors(report)]


def check_report(report: dict, name: str | None = None) -> dict:
    """Assert ``report`` follows its schema (audit when its sessions carry an audit)."""
    if name is None:
        name = "audit" if any("audit" in s for s in report.get("sessions", [])) else "report"
    problems = errors(report, name)
    assert not problems, f"report breaks {name}.schema.json:\n" + "\n".join(problems[:20])
    return report


def check_written_report(args, stdout: str, cwd=None) -> None:
    """After a command-line run: the report it wrote (``--json FILE`` or ``--json -``), if
    any, follows its schema."""
    import json
    import os

    args = [str(a) for a in args]
    if "--json" not in args[:-1]:
        return
    target = args[args.index("--json") + 1]
    if target == "-":
        text = stdout
    else:
        path = os.path.join(cwd or ".", target)
        if not os.path.isfile(path):
            return
        with open(path, encoding="utf-8") as f:
            text = f.read()
    if text.strip():
        check_report(json.loads(text), "inspect" if args[0] == "inspect" else None)
