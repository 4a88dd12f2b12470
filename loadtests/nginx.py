"""Private nginx instances for the benchmark: the fast upstream and the baseline proxy.

Each runs from its own prefix in the bench's output folder (config, pid, temp paths,
error log), in the foreground (``daemon off``) so :class:`harness.Processes` owns it,
with one worker and keepalive on, listening on 127.0.0.1 only. The upstream never logs
requests (it stands in for Retreaver, it is not measured); the proxy writes nginx's default
``combined`` access log to ``access.log`` in its prefix unless ``access_log=False``, so it
pays for request logs as the gateway does at its default level.

* ``upstream``: answers ``POST /rtbs.json`` with one static reservation, the stand-in
  for Retreaver that is fast enough never to be the bottleneck. Its ``expires_at`` lies
  far in the future so the gateway's shield stores it (capped by its max TTL).
* ``proxy``: ``proxy_pass`` with a keepalive pool to the upstream: the baseline the
  gateway is compared with, doing the same job without parsing or a shield.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from harness import HOST, Child, Processes, free_port, wait_tcp

RESERVATION = (
    '{"uuid":"c6e4ce37-9b49-46af-bd8e-16cb7753499d","status":"reserved",'
    '"retreaver_payout":5.0,"retreaver_seconds":10,"inbound_number":"+18772435010",'
    '"sip_address":"18772435010@sip.retreaver.com","expires_at":"2099-12-31T23:59:59.000Z"}'
)

_COMMON = """
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log {access_log};
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    server_tokens off;
{body}
}}
"""

_UPSTREAM = """
    server {{
        listen {host}:{port} backlog=8192;
        location = /rtbs.json {{
            default_type application/json;
            return 200 '{reservation}';
        }}
        location / {{ return 404; }}
    }}
"""

_PROXY = """
    upstream rtb {{
        server {host}:{upstream_port};
        keepalive 128;
        keepalive_requests 10000000;
    }}
    server {{
        listen {host}:{port} backlog=8192;
        location / {{
            proxy_pass http://rtb;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }}
    }}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if not found:
        raise RuntimeError("nginx is not installed (Debian: apt-get install -y nginx)")
    return found


def _start(
    procs: Processes,
    name: str,
    body: str,
    port: int,
    cpus: Sequence[int] | None,
    access_log: bool = False,
) -> tuple[Child, int]:
    prefix = procs.log_dir / name
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    where = f"{prefix}/access.log combined" if access_log else "off"
    conf.write_text(_COMMON.format(prefix=prefix, body=body, access_log=where))
    child = procs.start(
        name,
        [nginx_binary(), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        cpus=cpus,
    )
    wait_tcp(port, child)
    return child, port


def start_upstream(procs: Processes, cpus: Sequence[int] | None = None) -> tuple[Child, int]:
    port = free_port()
    body = _UPSTREAM.format(host=HOST, port=port, reservation=RESERVATION)
    return _start(procs, "nginx-upstream", body, port, cpus)


def start_proxy(
    procs: Processes,
    upstream_port: int,
    cpus: Sequence[int] | None = None,
    *,
    access_log: bool = True,
    name: str = "nginx-proxy",
) -> tuple[Child, int]:
    port = free_port()
    body = _PROXY.format(host=HOST, port=port, upstream_port=upstream_port)
    return _start(procs, name, body, port, cpus, access_log)
