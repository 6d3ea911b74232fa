"""Offline checks for deploy/ that need a little Python (run by deploy/check.sh in its own venv).

Usage::

    python deploy/checks/deploy_checks.py dashboards deploy/grafana/dashboards
    python deploy/checks/deploy_checks.py rules deploy/prometheus/rules docs/runbooks \
        deploy/grafana/dashboards
    python deploy/checks/deploy_checks.py compose docker-compose.yml deploy/schemas/compose-spec.json
    python deploy/checks/deploy_checks.py split RENDERED.yaml OUT_DIR

``dashboards``: every JSON parses, dashboard uids and (per dashboard) panel ids are unique, every
target has a datasource and a PromQL expression that parses with promql_parser (Grafana variables
are substituted first). ``rules``: every alert has severity, summary, description and a runbook_url
whose file exists under docs/runbooks and names at least one dashboard panel that exists
(``Panel: **<dashboard title> > <panel title>**``), and every expression parses. ``compose``: the compose file
validates against the vendored compose-spec JSON schema. ``split``: writes each rendered manifest
to its own file for kubernetes-validate, leaving out custom resources whose schemas it does not
bundle (KEDA ScaledObject; tests/deploy checks those fields instead).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import promql_parser
import yaml

# API groups of custom resources that kubernetes-validate has no schema for.
CRD_GROUPS = ("keda.sh/",)
RUNBOOK_PREFIX = "https://github.com/picture-dev/picture/blob/main/docs/runbooks/"
_RANGE_VARS = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
_VARS = re.compile(r"\$\{?[A-Za-z_]\w*\}?")
_RUNBOOK_PANEL = re.compile(r"^Panel: \*\*(?P<dashboard>[^*]+?) > (?P<panel>[^*]+?)\*\*", re.MULTILINE)


def promql_with_grafana_vars(expr: str) -> str:
    """Replace Grafana template variables with values so that the expression can be parsed."""
    return _VARS.sub("x", _RANGE_VARS.sub("5m", expr))


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def check_dashboards(directory: Path) -> list[str]:
    errors: list[str] = []
    uids: dict[str, Path] = {}
    files = sorted(directory.glob("*.json"))
    if not files:
        return [f"no dashboards in {directory}"]
    exprs = 0
    for path in files:
        try:
            dash = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            errors.append(f"{path}: invalid JSON: {exc}")
            continue
        uid = dash.get("uid")
        if not uid:
            errors.append(f"{path}: no uid")
        elif uid in uids:
            errors.append(f"{path}: uid {uid!r} also used by {uids[uid]}")
        else:
            uids[uid] = path
        if not dash.get("title"):
            errors.append(f"{path}: no title")
        ids: set[int] = set()
        for panel in _panels(dash.get("panels", [])):
            pid = panel.get("id")
            if pid is None:
                errors.append(f"{path}: panel {panel.get('title')!r} has no id")
            elif pid in ids:
                errors.append(f"{path}: duplicate panel id {pid} ({panel.get('title')!r})")
            else:
                ids.add(pid)
            if panel.get("type") == "row":
                continue
            targets = panel.get("targets", [])
            if not targets:
                errors.append(f"{path}: panel {panel.get('title')!r} has no targets")
            for target in targets:
                expr = target.get("expr", "")
                if not expr.strip():
                    errors.append(f"{path}: panel {panel.get('title')!r} has an empty expression")
                    continue
                if "datasource" not in target and "datasource" not in panel:
                    errors.append(f"{path}: panel {panel.get('title')!r} has no datasource")
                try:
                    promql_parser.parse(promql_with_grafana_vars(expr))
                    exprs += 1
                except ValueError as exc:
                    errors.append(f"{path}: panel {panel.get('title')!r}: {exc}: {expr}")
        for var in dash.get("templating", {}).get("list", []):
            query = var.get("query")
            if var.get("type") == "query" and isinstance(query, dict):
                match = re.fullmatch(r"label_values\((.+),\s*\w+\)", query.get("query", ""))
                if match is None:
                    errors.append(f"{path}: variable {var.get('name')!r}: unsupported query {query!r}")
                else:
                    try:
                        promql_parser.parse(match.group(1))
                    except ValueError as exc:
                        errors.append(f"{path}: variable {var.get('name')!r}: {exc}")
    print(f"{len(files)} dashboards, {exprs} expressions parsed")
    return errors


def panel_titles(dashboards: Path) -> set[tuple[str, str]]:
    """(dashboard title, panel title) of every panel that is not a row."""
    titles = set()
    for path in sorted(dashboards.glob("*.json")):
        dash = json.loads(path.read_text())
        for panel in _panels(dash.get("panels", [])):
            if panel.get("type") != "row":
                titles.add((dash.get("title", ""), panel.get("title", "")))
    return titles


def check_runbook_panels(name: str, runbook: Path, titles: set[tuple[str, str]]) -> list[str]:
    named = [(m["dashboard"], m["panel"]) for m in _RUNBOOK_PANEL.finditer(runbook.read_text())]
    if not named:
        return [f"{runbook}: {name}: no 'Panel: **<dashboard> > <panel>**' line naming the cause's panel"]
    return [
        f"{runbook}: {name}: no panel {panel!r} on dashboard {dash!r}"
        for dash, panel in named
        if (dash, panel) not in titles
    ]


def check_rules(rules_dir: Path, runbooks: Path, dashboards: Path) -> list[str]:
    errors: list[str] = []
    alerts = 0
    titles = panel_titles(dashboards)
    checked: set[str] = set()
    for path in sorted(rules_dir.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                try:
                    promql_parser.parse(rule["expr"])
                except ValueError as exc:
                    errors.append(f"{path}: {name}: {exc}")
                if "alert" not in rule:
                    continue
                alerts += 1
                if rule.get("labels", {}).get("severity") not in {"critical", "warning", "info"}:
                    errors.append(f"{path}: {name}: severity label missing or unknown")
                notes = rule.get("annotations", {})
                for key in ("summary", "description", "runbook_url"):
                    if not notes.get(key):
                        errors.append(f"{path}: {name}: annotation {key} missing")
                url = notes.get("runbook_url", "")
                if url != f"{RUNBOOK_PREFIX}{name}.md":
                    errors.append(f"{path}: {name}: runbook_url should be {RUNBOOK_PREFIX}{name}.md")
                elif not (runbooks / f"{name}.md").is_file():
                    errors.append(f"{path}: {name}: {runbooks / (name + '.md')} does not exist")
                elif name not in checked:
                    checked.add(name)
                    errors += check_runbook_panels(name, runbooks / f"{name}.md", titles)
    print(f"{alerts} alerting rules checked")
    return errors


def check_compose(compose: Path, schema_path: Path) -> list[str]:
    schema = json.loads(schema_path.read_text())
    document = yaml.safe_load(compose.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = [
        f"{compose}: {'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]
    print(f"{len(document.get('services', {}))} services validated against {schema_path.name}")
    return errors


def split_manifests(rendered: Path, out_dir: Path) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    kept = skipped = 0
    for index, doc in enumerate(d for d in yaml.safe_load_all(rendered.read_text()) if d):
        if str(doc.get("apiVersion", "")).startswith(CRD_GROUPS):
            skipped += 1
            continue
        name = f"{index:03d}-{doc['kind']}-{doc['metadata']['name']}.yaml"
        (out_dir / name).write_text(yaml.safe_dump(doc, sort_keys=False))
        kept += 1
    print(f"{kept} manifests written, {skipped} custom resources left out (validated by tests/deploy)")
    return []


def main(argv: list[str]) -> int:
    commands = {
        "dashboards": lambda a: check_dashboards(Path(a[0])),
        "rules": lambda a: check_rules(Path(a[0]), Path(a[1]), Path(a[2])),
        "compose": lambda a: check_compose(Path(a[0]), Path(a[1])),
        "split": lambda a: split_manifests(Path(a[0]), Path(a[1])),
    }
    if len(argv) < 2 or argv[0] not in commands:
        print(__doc__)
        return 2
    errors = commands[argv[0]](argv[1:])
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
