"""Running the gateway under uvicorn, with the drain that Kubernetes needs.

On the first SIGTERM (or SIGINT) ``/readyz`` turns 503 at once while the server keeps
serving for ``GATEWAY_DRAIN_DELAY_S``, so load balancers take the pod out before it stops
listening; then uvicorn stops accepting, finishes in-flight requests, runs the lifespan
shutdown (closing clients) and the process exits 0. A second signal stops at once.

Connections, tuned for a load balancer in front: keep-alive is 75 s, longer than the 60 s
idle timeout of common balancers (AWS ALB, GCP, nginx), so the gateway never closes a
connection the balancer is about to reuse. A request must arrive whole within
``GATEWAY_CLIENT_TIMEOUT_S`` of the connection opening (or of its first byte on a kept
connection) and its head within ``GATEWAY_MAX_HEADER_BYTES``, and a client that leaves
its answers unread that long is reset; see ``gateway/wire/protocol.py`` for why uvicorn
needs help there. At start the open-file limit is raised toward the hard one and checked
against the connection cap and the pools (``gateway/protect/descriptors.py``).

Library versions: subclasses ``uvicorn.Server`` and replaces the ``Server`` and
``Process`` of uvicorn's multiprocess supervisor, whose ``Multiprocess(config, sockets)``
signature is uvicorn 0.51's (0.50 wants a ``target``). ``tests/wire/test_drain.py`` and
``tests/observe/test_workers.py`` cover uvicorn 0.51.0 (floor) to 0.55.0
(``.ci/latest``, 2026-12-04); pyproject.toml allows ``>=0.51,<0.56``.
"""

from __future__ import annotations

import asyncio
import functools
import glob
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.supervisors.multiprocess import Process as multiprocess_Process

from gateway.config import Secret, Settings, deprecations
from gateway.observe import banner
from gateway.observe.health import DrainState
from gateway.observe.metrics import Metrics

log = logging.getLogger("gateway")

# A --workers N worker's: uvicorn's supervisor spawns the worker, which builds its server
# (this class, from the pickled config) and its app (worker_app, by import path) itself,
# so the two can meet only here. One per worker process; a single-process gateway does
# not use it (serve() hands its server and app one DrainState of their own).
_worker_drain = DrainState()


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose first exit signal drains before stopping: ``/readyz`` turns 503
    through ``drain`` at once, and the server stops ``drain_delay_s`` later."""

    def __init__(
        self,
        config: uvicorn.Config,
        drain: DrainState | None = None,
        drain_delay_s: float | None = None,
    ) -> None:
        super().__init__(config)
        self.drain = drain if drain is not None else _worker_drain
        self.drain_delay_s = (
            drain_delay_s if drain_delay_s is not None else Settings.from_env().drain_delay_s
        )
        # Set in a single-process gateway only: with --workers N the supervisor announces.
        self.announce: Callable[[socket.socket], None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.announce is not None and self.servers:
            listeners = self.servers[0].sockets
            if listeners:
                self.announce(listeners[0])

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain.draining:
            self.force_exit = self.should_exit
            self.should_exit = True
            return
        self.drain.start_draining()
        log.info(
            "draining", extra={"signal": signal.Signals(sig).name, "delay_s": self.drain_delay_s}
        )
        delay = self.drain_delay_s
        if delay <= 0:
            self.should_exit = True
            return

        def stop() -> None:
            self.should_exit = True

        # Runs in the main thread between loop iterations; the loop is ours.
        try:
            asyncio.get_running_loop().call_later(delay, stop)
        except RuntimeError:
            threading.Timer(delay, stop).start()


def worker_app() -> Starlette:
    """App factory for ``--workers N``: each worker reads the same environment."""
    from gateway.app import create_app
    from gateway.observe.logs import configure

    settings = Settings.from_env()
    configure(settings.log_format, settings.log_level)
    # Set by serve() in the supervisor before the workers were spawned, so this worker's
    # prometheus_client was imported in multiprocess mode.
    metrics = Metrics(multiprocess_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    app = create_app(settings, drain=_worker_drain, metrics=metrics)
    from gateway.wire.protocol import configure_worker_process

    configure_worker_process(**_limits(settings, metrics))  # this worker's protocol limits
    return app


def _limits(settings: Settings, metrics: Metrics) -> dict[str, Any]:
    """Limits of the HTTP protocol (gateway/wire/protocol.py) from the settings."""
    return dict(
        max_head_bytes=settings.max_header_bytes,
        request_timeout_s=settings.client_timeout_s,
        max_connections=settings.max_connections,
        on_refusal=metrics.protect_refusal,
    )


def start_sandbox_thread(host: str = "127.0.0.1", call_rate: float = 0.6) -> str:
    """Serve the sandbox on a free loopback port in a daemon thread; return its URL."""
    from gateway.sandbox.asgi import create_sandbox_app

    # IPPROTO_TCP, so asyncio sets TCP_NODELAY on accepted sockets (no delayed-ACK waits).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    # Listening before the server runs means early connections wait in the backlog
    # instead of being refused, so callers need not wait for the thread to start.
    sock.listen(2048)
    config = uvicorn.Config(
        create_sandbox_app(call_rate),
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="asyncio",
    )
    server = uvicorn.Server(config)

    def run() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    threading.Thread(target=run, name="sandbox", daemon=True).start()
    return f"http://{host}:{port}"


def serve(settings: Settings) -> int:
    from gateway.app import create_app
    from gateway.observe.logs import configure

    configure(settings.log_format, settings.log_level)
    for line in deprecations():
        log.warning(line)
    _check_descriptors(settings)
    if settings.sandbox:
        url = start_sandbox_thread(call_rate=settings.sandbox_call_rate)
        settings = _with(
            settings,
            rtb_upstream_url=url,
            core_api_url=url,
            core_api_v2_url=url,
            data_writing_url=url,
        )
        log.info("sandbox", extra={"url": url})
    if settings.workers > 1 and settings.redis_url is None:
        log.warning(
            "several workers without GATEWAY_REDIS_URL: each worker has its own "
            "shield store, so duplicates may reach the upstream once per worker"
        )
    common = dict(
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        lifespan="on",
        timeout_keep_alive=75,
        timeout_graceful_shutdown=30,
        server_header=False,
        date_header=True,
        # uvicorn trusts X-Forwarded-* from 127.0.0.1 by default; the gateway trusts them
        # only when the operator says a proxy in front sets them (and then from any peer,
        # since a cluster's proxy addresses are not known in advance).
        proxy_headers=settings.trust_forwarded_headers,
        forwarded_allow_ips="*" if settings.trust_forwarded_headers else None,
    )
    if settings.workers == 1:
        from gateway.wire.protocol import configure

        metrics = Metrics()
        drain = DrainState()
        app = create_app(settings, drain=drain, metrics=metrics)
        # httptools with a head-size limit and a request-arrival timeout uvicorn lacks.
        protocol = configure(**_limits(settings, metrics))
        config = uvicorn.Config(app, http=protocol, **common)  # type: ignore[arg-type]
        server = DrainingServer(config, drain, settings.drain_delay_s)
        server.announce = functools.partial(banner.announce, settings)
        server.run()
        return 0 if server.started else 3
    # Workers are spawned processes: hand them the effective settings via the environment.
    os.environ.update(_as_env(settings))
    from uvicorn.supervisors import Multiprocess, multiprocess

    multiprocess.Server = DrainingServer  # type: ignore[misc]  # workers drain like one process
    metrics_dir, owned = _multiprocess_metrics_dir()
    multiprocess.Process = _MetricsProcess  # type: ignore[misc]
    from gateway.wire.protocol import GuardedHttpToolsProtocol

    config = uvicorn.Config(
        "gateway.wire.server:worker_app",
        factory=True,
        workers=settings.workers,
        http=GuardedHttpToolsProtocol,  # by name: each worker sets its limits (worker_app)
        **common,
    )  # type: ignore[arg-type]
    listener = config.bind_socket()
    banner.announce(settings, listener)
    try:
        Multiprocess(config, sockets=[listener]).run()
    finally:
        if owned:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _check_descriptors(settings: Settings) -> None:
    """Raise the open-file limit toward the hard one; warn if it is still too low.

    Before the workers are spawned, so they inherit the raised limit.
    """
    from gateway.protect.descriptors import raise_soft_limit

    limit = raise_soft_limit(settings)
    warning = limit.warning()
    if warning is not None:
        log.warning(
            warning,
            extra={"nofile_soft": limit.soft, "nofile_hard": limit.hard, "needed": limit.needed},
        )


def _multiprocess_metrics_dir() -> tuple[str, bool]:
    """Prepare ``PROMETHEUS_MULTIPROC_DIR`` for the workers; True if we made it.

    Every worker writes its metric values to files there and ``/metrics`` (whichever
    worker answers) adds them up. Files left by an earlier run would be added too, so the
    directory is emptied first; an operator may choose it (e.g. an ``emptyDir`` volume).
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    owned = not path
    if not path:
        path = tempfile.mkdtemp(prefix="rtb-gateway-metrics-")
    os.makedirs(path, exist_ok=True)
    for pattern in ("*.db", "stats-*.json"):  # metric values, /stats rings (stats_share)
        for stale in glob.glob(os.path.join(path, pattern)):
            os.remove(stale)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    log.info("multiprocess metrics", extra={"dir": path})
    return path, owned


class _MetricsProcess(multiprocess_Process):
    """A uvicorn worker whose live gauges (in flight, pool, store size) and ``/stats`` file
    are dropped once it has exited, so a dead or replaced worker stops adding to them."""

    def join(self) -> None:
        super().join()
        pid = self.pid
        if pid is not None:
            from prometheus_client import multiprocess as prom_multiprocess

            from gateway.observe import stats_share

            prom_multiprocess.mark_process_dead(pid)
            directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
            if directory:
                stats_share.remove(directory, pid)


def _with(settings: Settings, **changes: object) -> Settings:
    import msgspec

    return msgspec.structs.replace(settings, **changes)


def _as_env(settings: Settings) -> dict[str, str]:
    import msgspec

    out: dict[str, str] = {}
    for field in msgspec.structs.fields(settings):
        value = getattr(settings, field.name)
        if value is None:
            continue
        if isinstance(value, Secret):
            value = value.reveal()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        out["GATEWAY_" + field.name.upper()] = str(value)
    out["GATEWAY_SANDBOX"] = "false"  # the sandbox already runs in the supervisor
    return out
