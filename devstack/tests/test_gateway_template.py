"""The gateway template renders for local processes and docker-compose; nginx accepts both."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from devstack import gateway, processes
from devstack.config import ROOT, SERVICES, stack_named
from ticketing_common import serve


def test_unknown_placeholder_is_an_error_not_a_silent_blank():
    with pytest.raises(KeyError, match="NOPE"):
        gateway.render("listen ${NOPE};", {})


def test_nginx_variables_are_left_alone():
    assert gateway.render("$remote_addr ${GATEWAY_PORT}", {"GATEWAY_PORT": "1"}) == (
        "$remote_addr 1"
    )


def test_replicas_become_upstream_servers():
    stack = stack_named("test", replicas=2)
    values = gateway.template_values(stack, gateway.local_upstreams(stack))
    assert values["BOOKING_SERVERS"] == (
        "server 127.0.0.1:13002 max_fails=0; server 127.0.0.1:13102 max_fails=0;"
    )


@pytest.mark.parametrize("flavour", ["local", "compose"])
def test_rendered_gateway_passes_nginx_config_check(tmp_path: Path, flavour: str):
    stack = stack_named("test")
    if flavour == "local":
        upstreams = gateway.local_upstreams(stack)
    else:  # service names resolve only inside compose; nginx -t needs them resolvable
        upstreams = {s: [f"localhost:{port}"] for s, port in SERVICES.items()}
    values = gateway.template_values(stack, upstreams)
    values["ACCESS_LOG"] = str(tmp_path / "access.log")
    values["CACHE_DIR"] = str(tmp_path / "cache")
    (tmp_path / "gateway.conf").write_text(gateway.render(gateway.TEMPLATE.read_text(), values))
    for sub in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / sub).mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"user root; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
        "events {}\n"
        f"http {{ client_body_temp_path {tmp_path}/client; proxy_temp_path {tmp_path}/proxy;"
        f" fastcgi_temp_path {tmp_path}/fastcgi; uwsgi_temp_path {tmp_path}/uwsgi;"
        f" scgi_temp_path {tmp_path}/scgi; include {tmp_path}/gateway.conf; }}\n"
    )
    result = subprocess.run(
        [gateway.nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dead_upstream_gets_a_json_502_from_a_real_nginx(tmp_path: Path):
    import time

    import httpx

    stack = stack_named("test")
    dead = {s: [f"127.0.0.1:{_free_port()}"] for s in SERVICES}
    values = gateway.template_values(stack, dead)
    port = _free_port()
    values.update(
        {
            "ACCESS_LOG": str(tmp_path / "access.log"),
            "GATEWAY_PORT": str(port),
            "CACHE_DIR": str(tmp_path / "cache"),
        }
    )
    (tmp_path / "gateway.conf").write_text(gateway.render(gateway.TEMPLATE.read_text(), values))
    for sub in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / sub).mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"user root; daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
        "events {}\n"
        f"http {{ client_body_temp_path {tmp_path}/client; proxy_temp_path {tmp_path}/proxy;"
        f" fastcgi_temp_path {tmp_path}/fastcgi; uwsgi_temp_path {tmp_path}/uwsgi;"
        f" scgi_temp_path {tmp_path}/scgi; include {tmp_path}/gateway.conf; }}\n"
    )
    server = subprocess.Popen(
        [gateway.nginx_binary(), "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/events", timeout=5)
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert response.status_code == 502
        assert response.json() == {"error": "upstream service unavailable", "code": "bad_gateway"}
        assert response.headers["x-request-id"]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_services_keep_idle_connections_longer_than_the_gateway_does() -> None:
    """nginx must be the side that closes an idle upstream connection: if uvicorn closes it
    first, a request nginx sends on it at that moment fails, and a POST is not retried (502)."""
    template = (ROOT / "nginx" / "templates" / "gateway.conf.template").read_text()
    gateway = {int(s) for s in re.findall(r"^\s*keepalive_timeout (\d+)s;", template, re.M)}
    assert len(gateway) == 1, gateway
    [nginx_idle] = gateway

    assert nginx_idle < serve.KEEP_ALIVE_SECONDS


def test_every_deployment_starts_services_through_the_one_launcher() -> None:
    """The server's flags live in ticketing_common/serve.py only: devstack, compose, the
    Dockerfile and the k8s Deployments name the launcher, never uvicorn's flags."""
    started = processes.service_command(stack_named("test"), "booking_service", 1)
    elsewhere = [
        ROOT / "docker-compose.yml",
        ROOT / "Dockerfile",
        *sorted((ROOT / "deploy" / "k8s" / "base" / "services").glob("*.yaml")),
    ]

    assert started[1:4] == ["-m", "ticketing_common.serve", "booking_service"]
    assert started[started.index("--port") + 1] == str(
        stack_named("test").service_port("booking_service", 1)
    )
    for path in elsewhere:
        text = path.read_text()
        assert "ticketing_common.serve" in text, path
        assert "--timeout-keep-alive" not in text, path
