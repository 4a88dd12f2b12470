"""Packaging: what the container image runs works from an installed wheel.

There is no Docker engine on the CI machines, so the image itself is never built here.
These tests check every part of it that can be checked without one:

- the wheel (``uv build --wheel``) installs into a fresh virtualenv with the locked
  runtime dependencies, and its console script, the image's ENTRYPOINT, runs
  ``--help`` and ``check-config`` from outside the source tree;
- ``gateway serve`` from that virtualenv answers the Dockerfile's own HEALTHCHECK
  command and exits 0 on SIGTERM after draining (the gateway is PID 1 in the image);
- the Dockerfile's build stage (its ``uv sync`` line, on the files .dockerignore lets
  in) yields a self-contained virtualenv;
- the Helm chart's settings (defaults and every ci/*.yaml) are accepted by the real
  ``gateway check-config``, and values.schema.json's bounds agree with the gateway's.

The chart's own rendering and Kubernetes validation live in helm/check.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.settings_doc import chart_config_env

yaml = pytest.importorskip("yaml")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "rtb-gateway"

# values.yaml `config.<key>` -> the environment variable the chart's ConfigMap sets (both
# generated from Settings by gateway/cli/settings_doc.py).
CHART_CONFIG_ENV = chart_config_env()


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        pytest.fail("uv is needed to build the wheel (CI installs it first)")
    return uv


def _clean_env(**extra: str) -> dict[str, str]:
    """The process environment without any GATEWAY_* or virtualenv variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "VIRTUAL_ENV", "PYTHON", "UV_"))
    }
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def _run(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        env=_clean_env() if env is None else env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chart_env(values: dict[str, Any]) -> dict[str, str]:
    """GATEWAY_* as the chart's ConfigMap renders them (bools lower-case, all strings)."""
    env = {}
    for key, value in values.get("config", {}).items():
        env[CHART_CONFIG_ENV[key]] = str(value).lower() if isinstance(value, bool) else str(value)
    for key, value in (values.get("extraConfig") or {}).items():
        env[key] = str(value)
    return env


def _dockerfile_healthcheck() -> list[str]:
    """The exec-form command of the Dockerfile's HEALTHCHECK."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK\b.*?\bCMD\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert match, "Dockerfile has no exec-form HEALTHCHECK"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = _run(
        [_uv(), "build", "--wheel", "--out-dir", str(out), str(ROOT)],
        env=_clean_env(),
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    wheels = list(out.glob("rtb_gateway-*.whl"))
    assert len(wheels) == 1, list(out.iterdir())
    return wheels[0]


@pytest.fixture(scope="module")
def venv_bin(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel and the locked runtime (non-dev) dependencies."""
    base = tmp_path_factory.mktemp("venv")
    venv = base / "venv"
    uv = _uv()
    result = _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=base)
    assert result.returncode == 0, result.stderr
    # The image's dependency set: uv.lock without the dev group.
    lock = _run(
        [
            uv,
            "export",
            "--locked",
            "--no-dev",
            "--no-hashes",
            "--no-emit-project",
            "--format",
            "requirements-txt",
            "--output-file",
            str(base / "requirements.txt"),
        ],
        env=_clean_env(),
        cwd=ROOT,
    )
    assert lock.returncode == 0, lock.stderr
    install = _run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            "-r",
            str(base / "requirements.txt"),
            str(wheel),
        ],
        cwd=base,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    return venv / "bin"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working directory outside the source tree: imports must come from the venv."""
    return tmp_path


def test_wheel_holds_the_package_and_the_console_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = z.read(entry_points).decode()
    assert "gateway/__main__.py" in names
    assert "gateway/config.py" in names
    # The ledger's schema migrations ship inside the package (applied at start-up).
    assert "gateway/ledger/migrations/0001_events.sql" in names
    assert not [n for n in names if n.startswith("tests/")]
    assert re.search(r"^gateway\s*=\s*gateway\.cli\.main:main\s*$", scripts, re.MULTILINE), scripts


def test_entrypoint_help(venv_bin: Path, outside: Path) -> None:
    result = _run([str(venv_bin / "gateway"), "--help"], cwd=outside)
    assert result.returncode == 0, result.stderr
    for command in ("serve", "sandbox", "check-config"):
        assert command in result.stdout
    serve = _run([str(venv_bin / "gateway"), "serve", "--help"], cwd=outside)
    assert serve.returncode == 0, serve.stderr
    for flag in ("--host", "--port", "--workers", "--sandbox"):
        assert flag in serve.stdout
    module = _run([str(venv_bin / "python"), "-m", "gateway", "--help"], cwd=outside)
    assert module.returncode == 0, module.stderr
    assert "check-config" in module.stdout


def test_entrypoint_runs_the_installed_copy(venv_bin: Path, outside: Path) -> None:
    result = _run(
        [str(venv_bin / "python"), "-c", "import gateway; print(gateway.__file__)"], cwd=outside
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_relative_to(venv_bin.parent), result.stdout


def test_check_config_defaults(venv_bin: Path, outside: Path) -> None:
    result = _run([str(venv_bin / "gateway"), "check-config"], cwd=outside)
    assert result.returncode == 0, result.stderr
    assert "GATEWAY_RTB_UPSTREAM_URL" in result.stdout
    assert "https://rtb.retreaver.com" in result.stdout
    assert "GATEWAY_DRAIN_DELAY_S" in result.stdout


def test_check_config_masks_the_redis_password(venv_bin: Path, outside: Path) -> None:
    env = _clean_env(GATEWAY_REDIS_URL="redis://:hunter2-secret@redis.internal:6379/0")
    result = _run([str(venv_bin / "gateway"), "check-config"], env=env, cwd=outside)
    assert result.returncode == 0, result.stderr
    assert "redis.internal" in result.stdout
    assert "hunter2-secret" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_RTB_TIMEOUT_MS", "soon"),
        ("GATEWAY_SHIELD_SCOPE", "caller"),
        ("GATEWAY_REDIS_URL", "http://redis:6379"),
    ],
)
def test_check_config_rejects_and_names_the_variable(
    venv_bin: Path, outside: Path, variable: str, value: str
) -> None:
    result = _run(
        [str(venv_bin / "gateway"), "check-config"],
        env=_clean_env(**{variable: value}),
        cwd=outside,
    )
    assert result.returncode != 0
    assert variable in result.stderr
    if variable == "GATEWAY_REDIS_URL":
        assert value not in result.stdout + result.stderr


def _chart_values_sets() -> list[tuple[str, dict[str, Any]]]:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    sets = [("values.yaml", {"config": defaults["config"], "extraConfig": defaults["extraConfig"]})]
    for path in sorted((CHART / "ci").glob("*.yaml")):
        override = yaml.safe_load(path.read_text()) or {}
        config = {**defaults["config"], **(override.get("config") or {})}
        sets.append(
            (f"ci/{path.name}", {"config": config, "extraConfig": override.get("extraConfig")})
        )
    return sets


@pytest.mark.parametrize(
    ("name", "values"), _chart_values_sets(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_chart_settings_are_accepted_by_the_gateway(
    venv_bin: Path, outside: Path, name: str, values: dict[str, Any]
) -> None:
    env = _chart_env(values)
    result = _run([str(venv_bin / "gateway"), "check-config"], env=_clean_env(**env), cwd=outside)
    assert result.returncode == 0, f"{name}: {result.stderr}"
    shown = json.loads(result.stdout)
    for variable in env:
        assert variable in shown, f"{name}: the gateway does not know {variable}"


def test_chart_configmap_sets_only_known_settings(venv_bin: Path, outside: Path) -> None:
    template = (CHART / "templates" / "configmap.yaml").read_text()
    rendered = set(re.findall(r"^\s+(GATEWAY_[A-Z0-9_]+):", template, re.MULTILINE))
    assert rendered == set(CHART_CONFIG_ENV.values())
    result = _run([str(venv_bin / "gateway"), "check-config"], cwd=outside)
    known = set(json.loads(result.stdout))
    assert rendered <= known, rendered - known


def test_chart_schema_bounds_are_accepted_by_the_gateway(venv_bin: Path, outside: Path) -> None:
    """Every value at the edge of values.schema.json must also pass check-config."""
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["config"]
    edges: dict[str, list[str]] = {}
    for key, prop in schema["properties"].items():
        if "enum" in prop:
            edges[key] = [str(v) for v in prop["enum"]]
        elif prop.get("type") in ("integer", "number"):
            edges[key] = [str(prop[b]) for b in ("minimum", "maximum") if b in prop]
        elif prop.get("type") == "boolean":
            edges[key] = ["true", "false"]
    assert {"shieldScope", "logFormat", "logLevel", "rtbTimeoutMs", "drainDelayS"} <= set(edges)
    rounds = max(len(v) for v in edges.values())
    for i in range(rounds):
        env = {CHART_CONFIG_ENV[k]: v[min(i, len(v) - 1)] for k, v in edges.items()}
        result = _run(
            [str(venv_bin / "gateway"), "check-config"], env=_clean_env(**env), cwd=outside
        )
        assert result.returncode == 0, f"{env}: {result.stderr}"


@pytest.fixture
def served(venv_bin: Path, outside: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = _free_port()
    env = _clean_env(GATEWAY_PORT=str(port), GATEWAY_DRAIN_DELAY_S="0.5", GATEWAY_LOG_FORMAT="json")
    proc = subprocess.Popen(  # the image's ENTRYPOINT + a CMD
        [
            str(venv_bin / "gateway"),
            "serve",
            "--sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        cwd=outside,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def test_serve_passes_the_healthcheck_and_drains_on_sigterm(
    served: tuple[subprocess.Popen[bytes], int], venv_bin: Path, outside: Path
) -> None:
    proc, port = served
    healthcheck = _dockerfile_healthcheck()
    assert healthcheck[0] == "python"
    # In the image `python` is the venv's (PATH=/opt/venv/bin:...).
    command = [str(venv_bin / "python"), *healthcheck[1:]]
    env = _clean_env(GATEWAY_PORT=str(port))
    deadline = time.monotonic() + 30
    while True:
        check = _run(command, env=env, cwd=outside, timeout=10)
        if check.returncode == 0:
            break
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert time.monotonic() < deadline, f"HEALTHCHECK never passed: {check.stderr}"
        time.sleep(0.2)

    ready = _run(
        [
            str(venv_bin / "python"),
            "-c",
            f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/readyz').status)",
        ],
        cwd=outside,
    )
    assert ready.stdout.strip() == "200", ready.stderr

    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=30)
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert rc == 0, output
    assert time.monotonic() - started >= 0.4, "exited before the drain delay"
    # Once stopped, the same HEALTHCHECK fails.
    assert _run(command, env=env, cwd=outside, timeout=10).returncode != 0


def _dockerignore_context(dest: Path) -> list[str]:
    """Copy what the .dockerignore allow-list lets into the build context."""
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for name in allowed:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(
                src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]")
            )
        else:
            shutil.copy2(src, dest / name)
    return allowed


def test_dockerfile_build_stage_makes_a_self_contained_venv(tmp_path: Path) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["gateway"\]$', dockerfile, re.MULTILINE)
    assert re.search(r'^CMD \["serve"\]$', dockerfile, re.MULTILINE)
    assert re.search(r"^USER \S+", dockerfile, re.MULTILINE)
    sync_lines = re.findall(r"uv sync ([^\n\\&]*)", dockerfile)
    assert sync_lines
    assert all("--locked" in s and "--no-dev" in s for s in sync_lines), sync_lines

    context = tmp_path / "src"
    context.mkdir()
    allowed = _dockerignore_context(context)
    assert {"pyproject.toml", "uv.lock", "gateway"} <= set(allowed)
    venv = tmp_path / "opt-venv"
    env = _clean_env(
        UV_PROJECT_ENVIRONMENT=str(venv),
        UV_COMPILE_BYTECODE="1",
        UV_LINK_MODE="copy",
        UV_PYTHON=sys.executable,
    )
    final_sync = shlex.split(sync_lines[-1].strip())
    result = _run([_uv(), "sync", *final_sync], env=env, cwd=context, timeout=600)
    assert result.returncode == 0, result.stderr

    # The runtime stage copies only the venv: the build context must not be needed.
    shutil.rmtree(context)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    help_ = _run([str(venv / "bin" / "gateway"), "--help"], cwd=outside)
    assert help_.returncode == 0, help_.stderr
    config = _run([str(venv / "bin" / "gateway"), "check-config"], cwd=outside)
    assert config.returncode == 0, config.stderr
    dev_only = [
        p.name
        for p in (venv / "lib").glob("python3*/site-packages/*")
        if p.name.startswith(("pytest", "ruff", "locust"))
    ]
    assert not dev_only, f"dev dependencies in the runtime venv: {dev_only}"
