"""Validate deploy/compose.yaml against the Compose Specification's JSON schema.

No Docker engine runs on the machines this project is built on, so this is how the compose file
is checked: variables are interpolated the way Compose does (${X}, ${X:-default}, ${X:?error},
$$ for a literal $), from .env.example, and the result must satisfy the schema and a few rules
of our own (every service has a health check, limits, and the data plane is not published).

usage: python deploy/check_compose.py SCHEMA.json [compose.yaml] [env-file]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

VAR = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


def read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip().strip('"')
    return env


def interpolate(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        op, arg = match.group(2), match.group(3)
        current = env.get(name, "")
        if op in (":-", "-"):
            return current or arg
        if op in (":?", "?") and not current:
            raise SystemExit(f"compose needs {name}: {arg}")
        return current

    return VAR.sub(sub, value)


def own_rules(doc: dict[str, Any]) -> list[str]:
    problems = []
    data_nets = {n for n, spec in (doc.get("networks") or {}).items()
                 if isinstance(spec, dict) and spec.get("internal")}
    if not data_nets:
        problems.append("no internal network for the data plane")
    for name, svc in doc["services"].items():
        check = svc.get("healthcheck") or {}
        one_shot = svc.get("restart") == "no"
        if not one_shot and (not check or check.get("disable")):
            problems.append(f"{name}: no health check")
        if not (svc.get("deploy", {}).get("resources", {}).get("limits")):
            problems.append(f"{name}: no CPU/memory limits")
        if name in {"postgres", "redis"}:
            if svc.get("ports"):
                problems.append(f"{name}: must not publish ports")
            if set(svc.get("networks", [])) - data_nets:
                problems.append(f"{name}: must be on the internal network only")
        for dep, cond in (svc.get("depends_on") or {}).items():
            if cond.get("condition") not in {"service_healthy", "service_completed_successfully"}:
                problems.append(f"{name}: depends_on {dep} without a health condition")
    redis = " ".join(str(x) for x in doc["services"]["redis"].get("command", []))
    if "--appendonly yes" not in redis or "noeviction" not in redis:
        problems.append("redis: AOF and noeviction must be on")
    return problems


def main() -> int:
    schema_path = Path(sys.argv[1])
    compose = Path(sys.argv[2] if len(sys.argv) > 2 else "deploy/compose.yaml")
    env_file = Path(sys.argv[3] if len(sys.argv) > 3 else ".env.example")
    schema = json.loads(schema_path.read_text())
    doc = interpolate(yaml.safe_load(compose.read_text()), read_env(env_file))
    # Compose merges `<<:` anchors before validating; PyYAML has already done the same.
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    for error in errors:
        say(f"schema: {'/'.join(str(p) for p in error.path)}: {error.message}")
    problems = own_rules(doc)
    for problem in problems:
        say(f"rule: {problem}")
    if errors or problems:
        return 1
    say(f"{compose}: valid against {schema.get('title', 'the schema')} "
          f"({len(doc['services'])} services)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
