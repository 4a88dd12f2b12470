"""Settings is the one source of truth: everything that describes a setting is derived.

The settings reference page, the Helm chart's config values, their schema and the
ConfigMap's keys are generated from the declarations on ``Settings`` by
``python -m gateway.cli.settings_doc``; these tests fail when any of them drifts, when a
setting has no description or cannot be reached from the chart, and when a declared
bound or choice is not enforced.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import settings_doc
from gateway.config import ConfigError, Settings, setting_specs

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
GENERATED = (
    settings_doc.REFERENCE,
    settings_doc.VALUES,
    settings_doc.SCHEMA,
    settings_doc.CONFIGMAP,
)


def test_generated_files_match_settings() -> None:
    stale = settings_doc.drifted(ROOT)
    assert not stale, f"out of date, run `{settings_doc.COMMAND}`: {stale}"


def test_drift_is_detected_and_regeneration_repairs_it(tmp_path: Path) -> None:
    for path in GENERATED:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / path, tmp_path / path)
    assert settings_doc.drifted(tmp_path) == []
    values = tmp_path / settings_doc.VALUES
    values.write_text(values.read_text().replace("  shieldMaxTtlS: 3600\n", ""))
    reference = tmp_path / settings_doc.REFERENCE
    reference.write_text(reference.read_text().replace("GATEWAY_RTB_TIMEOUT_MS", "GATEWAY_X"))
    assert set(settings_doc.drifted(tmp_path)) == {settings_doc.VALUES, settings_doc.REFERENCE}
    assert settings_doc.main(["--check", "--root", str(tmp_path)]) == 1
    assert settings_doc.main(["--root", str(tmp_path)]) == 0
    assert settings_doc.drifted(tmp_path) == []
    assert (tmp_path / settings_doc.VALUES).read_text() == (ROOT / settings_doc.VALUES).read_text()


def test_every_setting_has_a_description() -> None:
    assert [s.variable for s in setting_specs() if not s.description.strip()] == []


def _values() -> dict:
    return yaml.safe_load((ROOT / settings_doc.VALUES).read_text())


def _has_path(values: dict, dotted: str) -> bool:
    node = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_every_setting_is_reachable_from_the_chart() -> None:
    values = _values()
    configmap = (ROOT / settings_doc.CONFIGMAP).read_text()
    for spec in setting_specs():
        if spec.name in settings_doc.CHART_ELSEWHERE:
            path, how = settings_doc.CHART_ELSEWHERE[spec.name]
            assert _has_path(values, path), f"{spec.variable}: {how!r}, but no {path} in values"
            continue
        key = settings_doc.chart_key(spec)
        assert key in values["config"], f"{spec.variable}: no config.{key} in values.yaml"
        assert f"{spec.variable}: {{{{" in configmap, f"{spec.variable} not in the ConfigMap"
    # The four the chart used to miss.
    for key in ("rtbMaxAnswerBytes", "coreApiMaxAnswerBytes", "coreApiMaxQuietS"):
        assert key in values["config"]
    assert {"dataWritingUrl", "rtbCallerNumber"} <= set(values["config"])


def test_the_charts_default_config_is_accepted_by_settings() -> None:
    env = {}
    for key, value in _values()["config"].items():
        env[settings_doc.chart_config_env()[key]] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    settings = Settings.from_env(env)
    assert settings.log_format == "json"  # the chart's own default
    assert settings.rtb_timeout_ms == 3000


def test_schema_bounds_are_the_declared_bounds() -> None:
    schema = json.loads((ROOT / settings_doc.SCHEMA).read_text())["properties"]
    config = schema["config"]["properties"]
    timeout = config["rtbTimeoutMs"]
    assert (timeout["minimum"], timeout["maximum"]) == (1, 120_000)
    assert config["shieldLeaseMs"]["minimum"] == 100
    assert config["breakerOpenS"]["exclusiveMinimum"] == 0
    assert config["logLevel"]["enum"] == ["debug", "info", "warning", "error", "critical"]
    assert (schema["workers"]["minimum"], schema["workers"]["maximum"]) == (1, 64)
    refused = [r["required"][0] for r in schema["extraConfig"]["not"]["anyOf"]]
    assert "GATEWAY_REDIS_URL" in refused
    assert "GATEWAY_RTB_TIMEOUT_MS" in refused  # set it as config.rtbTimeoutMs instead


def _outside(spec) -> list[str]:
    if spec.choices:
        return ["nonsense"]
    out = []
    step = 1 if spec.kind == "int" else 0.5
    if spec.ge is not None:
        out.append(str(spec.ge - step))
    if spec.gt is not None:
        out.append(str(spec.gt))
    if spec.le is not None:
        out.append(str(spec.le + step))
    if spec.kind == "int":
        out = [str(int(float(v))) for v in out]
    return out


@pytest.mark.parametrize(
    "spec",
    [s for s in setting_specs() if _outside(s)],
    ids=lambda s: s.variable,
)
def test_every_declared_bound_and_choice_is_enforced(spec) -> None:
    for raw in _outside(spec):
        with pytest.raises(ConfigError) as info:
            Settings.from_env({spec.variable: raw})
        assert info.value.variable == spec.variable, raw


def test_check_config_describe_prints_the_declared_descriptions() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_REDIS_URL"] = "redis://:hunter2@redis:6379/0"
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", "--describe"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert 'GATEWAY_REDIS_URL="redis://:***@redis:6379/0"' in result.stdout
    for spec in setting_specs():
        assert f"{spec.variable}=" in result.stdout
        assert settings_doc.describe(spec) in result.stdout
