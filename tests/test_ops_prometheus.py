"""Prometheus config, alert rules and Grafana dashboards, checked against the real thing.

promtool checks the config and the rules and runs the rules' unit tests. Then a real
Prometheus (the Debian package) scrapes the running test stack with prometheus.yml (the
targets rewritten to the test stack's ports, scraping every second), traffic goes through
the gateway, and every expression of every dashboard panel and alert rule is evaluated
over the HTTP API: each one must parse and return data, and every metric it names must be
one the services really export.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devstack.config import ROOT, SERVICES
from tests.conftest import GATEWAY_URL, TEST_STACK, next_loopback_address

PROMETHEUS_DIR = ROOT / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES_FILE = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "tests" / "alerts_test.yml"
GRAFANA_DIR = ROOT / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"

# What Grafana puts in place of its built-in variables when it sends a query.
GRAFANA_BUILTINS = {"$__rate_interval": "30s", "$__interval": "5s", "$__range": "5m"}
PROMQL_KEYWORDS = frozenset(
    [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "offset",
        "bool",
        "inf",
        "nan",
    ]
)
UNREACHABLE_JOB = "unreachable_probe"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: scripts/bootstrap.sh installs the prometheus package"
        )
    return path


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("promtool"), *args], capture_output=True, text=True, timeout=60)


# ---------------------------------------------------------------- PromQL text helpers


def _blank_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)


def referenced_metrics(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords, labels and numbers left out)."""
    text = _blank_strings(expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group().lower() in PROMQL_KEYWORDS:
            continue
        names.add(match.group())
    return names


def _mask_nested(expr: str) -> str:
    """``expr`` with strings and everything inside brackets blanked (same length)."""
    out, depth, quote, escaped = [], 0, "", False
    for ch in expr:
        if quote:
            out.append(" ")
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            out.append(" ")
        elif ch in "([{":
            depth += 1
            out.append(ch if depth == 1 else " ")
        elif ch in ")]}":
            depth -= 1
            out.append(ch if depth == 0 else " ")
        else:
            out.append(" " if depth else ch)
    return "".join(out)


def _top_level_split(expr: str, pattern: str) -> list[str]:
    """Split where ``pattern`` matches outside brackets and strings."""
    parts, start = [], 0
    for match in re.finditer(pattern, _mask_nested(expr)):
        parts.append(expr[start : match.start()])
        start = match.end()
    parts.append(expr[start:])
    return [part.strip() for part in parts]


_MATCHING_MODIFIERS = re.compile(
    r"^(?:\s|bool\b|(?:on|ignoring)\s*\([^)]*\)|group_(?:left|right)(?:\s*\([^)]*\))?)+"
)


def alert_signals(expr: str) -> list[str]:
    """The measured sides of an alert expression: thresholds and set operators cut away.

    ``a > 0.05 and b > 0`` gives ``[a, b]``: a healthy system has no alert firing, so it is
    the measurements, not the whole rule, that must return data.
    """
    signals = []
    for operand in _top_level_split(expr, r"\b(?:and|or|unless)\b"):
        for side in _top_level_split(operand, r"==|!=|>=|<=|>|<"):
            side = _MATCHING_MODIFIERS.sub("", side).strip()
            if side and not re.fullmatch(r"[-+]?[0-9.eE+]+", side):
                signals.append(side)
    return signals


def test_referenced_metrics_finds_metric_names_only() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (job, le) (rate(http_request_duration_seconds_bucket"
        '{job=~"$job", path!~"/healthz"}[$__rate_interval]))) / on (job) group_left '
        "sum without (instance) (up) or on() vector(0) > 1e3"
    )
    assert referenced_metrics(expr) == {"http_request_duration_seconds_bucket", "up"}


def test_alert_signals_drop_thresholds_and_keep_both_sides_of_and() -> None:
    expr = 'sum by (job) (x{a=">"}) > 100\nand\nsum by (job) (delta(y[10m])) > 0'
    assert alert_signals(expr) == ['sum by (job) (x{a=">"})', "sum by (job) (delta(y[10m]))"]
    assert alert_signals("(sum(z) or on() vector(0)) > 0") == ["(sum(z) or on() vector(0))"]
    assert alert_signals("a > bool on (job) group_left b unless ignoring (x) c") == ["a", "b", "c"]


# ---------------------------------------------------------------- what is evaluated


@dataclass(frozen=True)
class Query:
    source: str
    expr: str


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _load_dashboard(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def dashboard_queries() -> list[Query]:
    queries = []
    for path in DASHBOARDS:
        board = _load_dashboard(path)
        for panel in _panels(board["panels"]):
            for target in panel.get("targets", []):
                queries.append(
                    Query(f"{path.name}: {panel['title']} [{target['refId']}]", target["expr"])
                )
    return queries


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard, variable, query) of every query variable: ``label_values(metric, label)``."""
    found = []
    for path in DASHBOARDS:
        for variable in _load_dashboard(path).get("templating", {}).get("list", []):
            if variable["type"] == "query":
                query = variable["query"]
                found.append(
                    (
                        path.name,
                        variable["name"],
                        query["query"] if isinstance(query, dict) else query,
                    )
                )
    return found


# ---------------------------------------------------------------- offline checks


def test_prometheus_config_passes_promtool_check() -> None:
    result = _promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_promtool_check() -> None:
    result = _promtool("check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_on_its_failure_and_not_on_healthy_series() -> None:
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    }
    assert tested == {rule["alert"] for rule in alert_rules()}, "every alert has a unit test"


def test_prometheus_scrapes_every_replica_of_every_service_every_five_seconds() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["global"]["scrape_interval"] == "5s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"prometheus", *SERVICES}
    for service, port in SERVICES.items():
        # Every replica docker-compose runs (<PREFIX>_REPLICAS), found through its DNS.
        [discovery] = jobs[service]["dns_sd_configs"]
        assert (discovery["names"], discovery["type"], discovery["port"]) == ([service], "A", port)
        assert jobs[service].get("metrics_path", "/metrics") == "/metrics"


def test_dashboards_use_the_provisioned_prometheus_data_source() -> None:
    datasource = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    assert DASHBOARDS, "grafana/dashboards has dashboards"
    uids = set()
    for path in DASHBOARDS:
        board = _load_dashboard(path)
        assert board["uid"] not in uids
        uids.add(board["uid"])
        ids = [panel["id"] for panel in _panels(board["panels"])]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids are unique"
        for panel in _panels(board["panels"]):
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{path.name}: {panel['title']} fits the grid"
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
            assert panel["targets"], f"{path.name}: {panel['title']} has a query"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == datasource["uid"], panel["title"]


def test_dashboards_show_what_operators_need() -> None:
    exprs = " ".join(q.expr for q in dashboard_queries())
    for needed in (
        "rate(http_requests_total",
        'status=~"5.."',
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
        'outcome="created"',
        'outcome="confirmed"',
        'outcome="expired"',
        'outcome="failed"',
        'event_seat_holds_total{outcome="conflict"}',
        "outbox_backlog",
        "messages_consumed_total",
        "messages_dead_lettered_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "rate(checkins_total",
        "event_waitlist_waiting",
        "event_waitlist_offers_total",
    ):
        assert needed in exprs, f"no dashboard panel shows {needed}"


# ---------------------------------------------------------------- live Prometheus


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def render_test_config(port: int) -> dict[str, Any]:
    """prometheus.yml as the test stack needs it: same jobs and rules, local targets."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]]
    for job in config["scrape_configs"]:
        name = job["job_name"]
        own_port = port if name == "prometheus" else TEST_STACK.service_port(name)
        target = f"127.0.0.1:{own_port}"
        job.pop("dns_sd_configs", None)
        job["static_configs"] = [{"targets": [target]}]
    # A target nobody answers, so the availability alerts can be seen going pending.
    config["scrape_configs"].append(
        {
            "job_name": UNREACHABLE_JOB,
            "static_configs": [{"targets": [f"127.0.0.1:{_free_port()}"]}],
        }
    )
    return config


class PrometheusApi:
    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=10.0)

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        body = response.json()
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def try_query(self, expr: str) -> tuple[str, Any]:
        body = self.client.get("/api/v1/query", params={"query": expr}).json()
        return body["status"], body.get("data", {}).get("result") or body.get("error")


def _drive_traffic() -> None:
    """Requests through the gateway reaching every service, each client on its own address."""
    paths = [
        ("GET", "/api/events"),
        ("GET", "/api/events/987654321"),
        ("GET", "/api/auth/me"),
        ("POST", "/api/auth/login"),
        ("GET", "/api/bookings/user"),
        ("GET", "/api/payments/verify/no-such-ref"),
        ("GET", "/api/notifications"),
    ]
    for _ in range(2):
        transport = httpx.HTTPTransport(local_address=next_loopback_address())
        with httpx.Client(base_url=GATEWAY_URL, transport=transport, timeout=10.0) as client:
            for method, path in paths:
                body = (
                    {"email": "nobody@example.com", "password": "wrong"}
                    if method == "POST"
                    else None
                )
                client.request(method, path, json=body)
    with httpx.Client(timeout=10.0) as client:
        for service in SERVICES:
            client.get(f"{TEST_STACK.service_url(service)}/healthz")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusApi]:
    """A real Prometheus scraping the test stack, after two waves of traffic."""
    workdir = tmp_path_factory.mktemp("prometheus")
    port = _free_port()
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(render_test_config(port), sort_keys=False))
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            _tool("prometheus"),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    api = PrometheusApi(f"http://127.0.0.1:{port}")
    try:
        _wait_ready(api, process, workdir)
        # A first scrape before any traffic, so rates have a baseline to rise from.
        _wait_for_scrapes_after(api, time.time(), scrapes=1)
        _drive_traffic()
        time.sleep(2.5)
        _drive_traffic()
        _wait_for_scrapes_after(api, time.time(), scrapes=3)
        yield api
    finally:
        api.client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_ready(api: PrometheusApi, process: subprocess.Popen[bytes], workdir: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("prometheus exited:\n" + (workdir / "prometheus.log").read_text())
        try:
            if api.client.get("/-/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("prometheus was not ready within 20 s")


def _wait_for_scrapes_after(api: PrometheusApi, since: float, scrapes: int) -> None:
    """Until every service target has been scraped ``scrapes`` times after ``since``."""
    jobs = "|".join(SERVICES)
    expr = f'count(timestamp(up{{job=~"{jobs}"}}) >= {since + scrapes - 0.5})'
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = api.query(expr)
        if result and int(result[0]["value"][1]) == len(SERVICES):
            return
        time.sleep(0.3)
    pytest.fail("prometheus did not scrape every service of the test stack in time")


def _grafana_job_values(api: PrometheusApi) -> dict[str, str]:
    """Each dashboard variable's values as Grafana would fetch them (``label_values``)."""
    values = {}
    for _, name, query in variable_queries():
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
        assert match, f"variable {name}: only label_values(metric, label) is supported: {query}"
        metric, label = match.groups()
        series = api.get("/api/v1/series", **{"match[]": metric})
        found = sorted({s[label] for s in series if label in s})
        assert found, f"variable {name} ({query}) has no values"
        values[f"${name}"] = "(" + "|".join(found) + ")"
    return values


def _substitute(expr: str, values: dict[str, str]) -> str:
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(name, values[name])
    assert "$" not in expr.replace("$labels", ""), f"unknown variable left in {expr}"
    return expr


@pytest.mark.stack
def test_prometheus_scrapes_every_service_of_the_running_stack(prometheus: PrometheusApi) -> None:
    up = {r["metric"]["job"]: r["value"][1] for r in prometheus.query("up")}
    assert {job: up.get(job) for job in [*SERVICES, "prometheus"]} == {
        job: "1" for job in [*SERVICES, "prometheus"]
    }


@pytest.mark.stack
def test_every_dashboard_query_parses_and_returns_data(prometheus: PrometheusApi) -> None:
    values = {**GRAFANA_BUILTINS, **_grafana_job_values(prometheus)}
    problems = []
    for query in dashboard_queries():
        status, result = prometheus.try_query(_substitute(query.expr, values))
        if status != "success" or not result:
            problems.append(f"{query.source}: {status}: {result!r}\n    {query.expr}")
    assert not problems, "\n".join(problems)


@pytest.mark.stack
def test_every_alert_rule_parses_and_its_measurements_return_data(
    prometheus: PrometheusApi,
) -> None:
    problems = []
    for rule in alert_rules():
        status, result = prometheus.try_query(rule["expr"])
        if status != "success":
            problems.append(f"{rule['alert']}: does not evaluate: {result}")
            continue
        for signal in alert_signals(rule["expr"]):
            status, result = prometheus.try_query(signal)
            if status != "success" or not result:
                problems.append(f"{rule['alert']}: no data for {signal}: {result!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.stack
def test_every_metric_the_dashboards_and_alerts_use_is_exported(prometheus: PrometheusApi) -> None:
    """Catches a misspelt name that ``or vector(0)`` would otherwise hide."""
    series_names = set(prometheus.get("/api/v1/label/__name__/values"))
    families = set(prometheus.get("/api/v1/metadata"))
    exprs = [q.expr for q in dashboard_queries()] + [r["expr"] for r in alert_rules()]
    used = set().union(*(referenced_metrics(e) for e in exprs))
    used |= {re.sub(r"label_values\((\w+).*", r"\1", q) for _, _, q in variable_queries()}

    def exported(name: str) -> bool:
        family = re.sub(r"_(bucket|count|sum|total)$", "", name)
        return name in series_names or name in families or family in families

    missing = sorted(name for name in used if not exported(name))
    assert not missing, f"not exported by any scraped target: {missing}"


@pytest.mark.stack
def test_availability_alerts_go_pending_for_a_target_that_does_not_answer(
    prometheus: PrometheusApi,
) -> None:
    deadline = time.monotonic() + 10
    while True:
        alerts = prometheus.get("/api/v1/alerts")["alerts"]
        active = {(a["labels"]["alertname"], a["labels"].get("job")) for a in alerts}
        if {("ServiceDown", UNREACHABLE_JOB), ("ReplicaDown", UNREACHABLE_JOB)} <= active:
            break
        assert time.monotonic() < deadline, f"availability alerts not raised: {active}"
        time.sleep(0.5)
    down_services = {job for name, job in active if name in {"ServiceDown", "ReplicaDown"}}
    assert down_services == {UNREACHABLE_JOB}, "the running services are not reported down"
