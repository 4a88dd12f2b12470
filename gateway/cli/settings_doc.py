"""Generate every description of the settings from :class:`gateway.config.Settings`.

The settings used to be described by hand in five places (Settings, the README's table,
check-config, the Helm values and the chart's docs), and those drifted: four settings never
reached the chart. Now ``Settings`` declares each one (default, bounds, choices, a one-line
description) and this script writes the rest from it:

- ``docs/pages/reference/settings.md``: the settings reference;
- ``helm/rtb-gateway/values.yaml``: the ``config`` section, one key per setting;
- ``helm/rtb-gateway/values.schema.json``: the schema of that section (and of ``workers``);
- ``helm/rtb-gateway/templates/configmap.yaml``: the ``GATEWAY_*`` keys of the ConfigMap.

``gateway check-config --describe`` prints the same descriptions. Run after changing a
setting (``--check`` only reports drift; tests/test_settings_doc.py fails on it)::

    uv run python -m gateway.cli.settings_doc [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gateway.config import SettingSpec, setting_specs

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path("docs/pages/reference/settings.md")
VALUES = Path("helm/rtb-gateway/values.yaml")
SCHEMA = Path("helm/rtb-gateway/values.schema.json")
CONFIGMAP = Path("helm/rtb-gateway/templates/configmap.yaml")

COMMAND = "uv run python -m gateway.cli.settings_doc"

# Settings the chart sets another way than a `config.*` key: the value that does it (a
# dotted path in values.yaml) and how, in words.
CHART_ELSEWHERE: dict[str, tuple[str, str]] = {
    "host": ("args", "`0.0.0.0`, set by the chart (`args` replaces the command line)"),
    "port": ("containerPorts.http", "`containerPorts.http` (`--port`)"),
    "workers": ("workers", "`workers` (`--workers`)"),
    "sandbox": ("extraArgs", "`extraArgs: [--sandbox]`, for demos only"),
    "redis_url": ("redis.url", "`redis.url` or `redis.existingSecret` (kept in a Secret)"),
    "ledger_url": (
        "ledger.url",
        "`ledger.url` or `ledger.existingSecret` (kept in a Secret)",
    ),
    "ledger_secret": (
        "ledger.hmacSecret",
        "`ledger.hmacSecret` or `ledger.hmacExistingSecret` (kept in a Secret)",
    ),
    "admin_token": ("admin.token", "`admin.token` or `admin.existingSecret` (kept in a Secret)"),
    "rtb_allowed_keys": (
        "extraSecretEnv",
        "`extraSecretEnv.GATEWAY_RTB_ALLOWED_KEYS` (kept in a Secret)",
    ),
    "reconcile_api_key": (
        "extraSecretEnv",
        "`extraSecretEnv.GATEWAY_RECONCILE_API_KEY` (kept in a Secret)",
    ),
}

# The chart's own defaults where they differ from the gateway's, and why.
CHART_DEFAULTS = {"log_format": "json"}  # a cluster's log collector wants JSON lines
# drain_delay_s is whole seconds in the chart: the preStop sleep and the grace period
# are computed from it with `int`.
CHART_INTEGER = {"drain_delay_s"}
CHART_REQUIRED = ("rtbTimeoutMs", "drainDelayS")  # the grace period is computed from them

URL_PATTERN = r"^https?://[^/?#\s]+(/[^?#\s]*)?$"


def chart_key(spec: SettingSpec) -> str:
    """``rtb_timeout_ms`` -> ``rtbTimeoutMs``: the setting's key under ``config``."""
    head, *rest = spec.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def chart_specs() -> list[SettingSpec]:
    """The settings the chart exposes as ``config.*`` keys."""
    return [s for s in setting_specs() if s.name not in CHART_ELSEWHERE]


def chart_config_env() -> dict[str, str]:
    """``config.<key>`` -> the environment variable the chart's ConfigMap sets."""
    return {chart_key(s): s.variable for s in chart_specs()}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _chart_default(spec: SettingSpec) -> Any:
    value = CHART_DEFAULTS.get(spec.name, spec.default)
    if value is None:
        return ""
    if spec.kind == "float" and float(value).is_integer():
        return int(value)
    return value


def allowed(spec: SettingSpec) -> str:
    """The bounds or choices, in words, for the reference and check-config."""
    if spec.choices:
        return ", ".join(f"`{c}`" for c in spec.choices)
    parts = []
    if spec.gt is not None:
        parts.append(f"> {_number(spec.gt)}")
    if spec.ge is not None:
        parts.append(f"≥ {_number(spec.ge)}")
    if spec.le is not None:
        parts.append(f"≤ {_number(spec.le)}")
    if parts:
        return ", ".join(parts)
    if spec.name.endswith("_url") and spec.kind == "str":
        return "an `http://` or `https://` URL with a host, no query"
    return {
        "bool": "`true`, `false`",
        "secret": "a secret: masked everywhere",
    }.get(spec.kind, "")


def default_text(spec: SettingSpec) -> str:
    if spec.default is None or spec.default == "":
        return "unset"
    if isinstance(spec.default, bool):
        return f"`{str(spec.default).lower()}`"
    if isinstance(spec.default, float):
        return f"`{_number(spec.default)}`"
    return f"`{spec.default}`"


def describe(spec: SettingSpec) -> str:
    """One line for check-config: the description, then default and bounds."""
    extra = f"default {default_text(spec).replace('`', '')}"
    bounds = allowed(spec).replace("`", "")
    if bounds:
        extra += f"; {bounds}"
    return f"{spec.description} ({extra})"


def reference_page() -> str:
    lines = [
        "# Settings",
        "",
        "<!-- Generated from gateway/config.py by `" + COMMAND + "`; do not edit. -->",
        "",
        "Environment variables, read once at start-up; `gateway serve` flags override them. A bad",
        "value stops the gateway (and `gateway check-config`) with a message naming the variable.",
        "`gateway check-config` prints the effective values with secrets masked;",
        "`gateway check-config --describe` adds these descriptions. In the Helm chart each",
        "setting is a `config.*` value (or the value named in the last column).",
        "",
        "| variable | default | allowed | meaning | Helm value |",
        "| --- | --- | --- | --- | --- |",
    ]
    for spec in setting_specs():
        helm = f"`config.{chart_key(spec)}`"
        if spec.name in CHART_ELSEWHERE:
            helm = CHART_ELSEWHERE[spec.name][1]
        if spec.name in CHART_DEFAULTS:
            helm += f" (chart default `{CHART_DEFAULTS[spec.name]}`)"
        meaning = spec.description.replace("|", "\\|")
        lines.append(
            f"| `{spec.variable}` | {default_text(spec)} | {allowed(spec)} | {meaning} | {helm} |"
        )
    return "\n".join(lines) + "\n"


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    return json.dumps(value)


def values_section() -> str:
    lines = [
        VALUES_BEGIN + " (rendered into a ConfigMap as GATEWAY_* environment variables)",
        "## Generated from gateway/config.py by `" + COMMAND + "`; do not edit by hand.",
        "## docs/pages/reference/settings.md lists them all. A change here rolls the pods.",
        "",
        "config:",
    ]
    for spec in chart_specs():
        key = chart_key(spec)
        lines.append(f"  ## @param config.{key} {spec.variable}: {spec.description}")
        lines.append(f"  {key}: {_yaml_scalar(_chart_default(spec))}")
    return "\n".join(lines) + "\n\n"


def _schema_property(spec: SettingSpec) -> dict[str, Any]:
    prop: dict[str, Any]
    if spec.choices:
        prop = {"type": "string", "enum": list(spec.choices)}
    elif spec.kind == "bool":
        prop = {"type": "boolean"}
    elif spec.kind in ("int", "float"):
        integer = spec.kind == "int" or spec.name in CHART_INTEGER
        prop = {"type": "integer" if integer else "number"}
        if spec.ge is not None:
            prop["minimum"] = int(spec.ge) if integer else spec.ge
        if spec.gt is not None:
            if integer:
                prop["minimum"] = int(spec.gt) + 1
            else:
                prop["exclusiveMinimum"] = spec.gt
        if spec.le is not None:
            prop["maximum"] = int(spec.le) if integer else spec.le
    elif spec.name.endswith("_url"):
        prop = {"type": "string", "pattern": URL_PATTERN}
    else:
        prop = {"type": "string"}
    prop["description"] = f"{spec.variable}: {spec.description}"
    return prop


def schema_text(current: str) -> str:
    schema = json.loads(current)
    props = schema["properties"]
    props["config"] = {
        "type": "object",
        "properties": {chart_key(s): _schema_property(s) for s in chart_specs()},
        "additionalProperties": False,
        "required": list(CHART_REQUIRED),
    }
    # extraConfig is for settings this chart does not know yet: one it sets as config.* or
    # from a Secret would be a duplicate key in the ConfigMap, so the schema refuses it.
    from_secrets = ["GATEWAY_REDIS_URL", "GATEWAY_LEDGER_URL", "GATEWAY_LEDGER_SECRET"]
    managed = [*from_secrets, "GATEWAY_ADMIN_TOKEN", *chart_config_env().values()]
    extra = props["extraConfig"]
    extra["not"] = {"anyOf": [{"required": [variable]} for variable in managed]}
    extra["description"] = (
        "GATEWAY_* settings the config section does not hold; the Redis and ledger URLs, the "
        "ledger secret and the admin token belong in redis.*, ledger.* and admin.* (Secrets), "
        "every other setting has its config.* key"
    )
    workers = next(s for s in setting_specs() if s.name == "workers")
    props["workers"] = _schema_property(workers)
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _configmap_line(spec: SettingSpec) -> str:
    ref = f".Values.config.{chart_key(spec)}"
    if spec.kind == "int" or spec.name in CHART_INTEGER:
        value = f"int {ref} | quote"
    elif spec.kind in ("float", "bool"):
        value = f"{ref} | toString | quote"
    else:
        value = f"{ref} | quote"
    return f"  {spec.variable}: {{{{ {value} }}}}"


CONFIGMAP_BEGIN = "  # BEGIN settings: generated from gateway/config.py by " + COMMAND
CONFIGMAP_END = "  # END settings"


def configmap_text(current: str) -> str:
    head, sep, rest = current.partition(CONFIGMAP_BEGIN)
    if not sep:
        raise SystemExit(f"{CONFIGMAP}: the line {CONFIGMAP_BEGIN.strip()!r} is missing")
    _, sep, tail = rest.partition(CONFIGMAP_END)
    if not sep:
        raise SystemExit(f"{CONFIGMAP}: the line {CONFIGMAP_END.strip()!r} is missing")
    body = [
        "  # Non-secret settings; GATEWAY_REDIS_URL comes from a Secret.",
        *(_configmap_line(s) for s in chart_specs()),
    ]
    return head + CONFIGMAP_BEGIN + "\n" + "\n".join(body) + "\n" + CONFIGMAP_END + tail


VALUES_BEGIN = "## @section Gateway settings"
VALUES_END = "## @param extraConfig"


def values_text(current: str) -> str:
    head, sep, rest = current.partition(VALUES_BEGIN)
    if not sep:
        raise SystemExit(f"{VALUES}: the line starting {VALUES_BEGIN!r} is missing")
    _, sep, tail = rest.partition(VALUES_END)
    if not sep:
        raise SystemExit(f"{VALUES}: the line starting {VALUES_END!r} is missing")
    return head + values_section() + VALUES_END + tail


def generated(root: Path = ROOT) -> dict[Path, str]:
    """Every generated file's path (relative to ``root``) and the text it must hold."""
    missing = [s.variable for s in setting_specs() if not s.description]
    if missing:
        raise SystemExit(f"settings without a description in gateway/config.py: {missing}")
    return {
        REFERENCE: reference_page(),
        VALUES: values_text((root / VALUES).read_text(encoding="utf-8")),
        SCHEMA: schema_text((root / SCHEMA).read_text(encoding="utf-8")),
        CONFIGMAP: configmap_text((root / CONFIGMAP).read_text(encoding="utf-8")),
    }


def drifted(root: Path = ROOT) -> list[Path]:
    """The generated files whose contents differ from what Settings says."""
    out = []
    for path, text in generated(root).items():
        target = root / path
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report drift, write nothing")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: here)")
    args = parser.parse_args(argv)
    if args.check:
        stale = drifted(args.root)
        for path in stale:
            print(f"{path} is out of date: run {COMMAND}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in generated(args.root).items():
        target = args.root / path
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
