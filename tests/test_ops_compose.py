"""docker-compose.yml, the Dockerfile, .env.example and the database init script.

``docker-compose config`` (the Debian package, Compose v1) validates and resolves the
file; the tests then check that what it names exists and fits together: every service
with its command, port and health check, start order by health, every mounted path, the
gateway template's variables, the Prometheus targets and Grafana's provisioning. The init
script runs for real against a throwaway PostgreSQL cluster, as the postgres image runs it.
"""

from __future__ import annotations

import getpass
import importlib
import inspect
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.config import DATABASES, ROOT, SERVICES
from ticketing_common.messaging.config import MessagingSettings
from ticketing_common.settings import ServiceSettings

COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
INIT_SCRIPT = ROOT / "init-scripts" / "01-databases.sql"
GATEWAY_TEMPLATE = ROOT / "nginx" / "templates" / "gateway.conf.template"

INFRASTRUCTURE = {"postgres", "redis", "rabbitmq", "mailpit"}
TOOLING = {"migrate", "nginx", "prometheus", "grafana", "k6"}
PUBLISHED = {
    "nginx": {8080: 8080},
    "rabbitmq": {15672: 15672},
    "prometheus": {9090: 9090},
    "grafana": {3100: 3000},
    "mailpit": {8025: 8025},
}
_ENV_LINE = re.compile(r"^#?\s?([A-Z][A-Z0-9_]*)=(.*)$")
_INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[-?]([^}]*))?\}")


def _docker_compose() -> str:
    found = shutil.which("docker-compose")
    if not found:
        pytest.fail(
            "docker-compose is not installed: scripts/bootstrap.sh installs the Debian package"
        )
    return found


def compose_config(env_file: Path, *extra: str) -> dict[str, Any]:
    result = subprocess.run(
        [
            _docker_compose(),
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(env_file),
            "-f",
            str(COMPOSE_FILE),
            *extra,
            "config",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@pytest.fixture(scope="module")
def no_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty env file, so a developer's own .env never changes what is checked."""
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


@pytest.fixture(scope="module")
def config(no_env_file: Path) -> dict[str, Any]:
    return compose_config(no_env_file)


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = config["services"]
    return found


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every volume entry, in short or long syntax."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        mounts.append((source, target))
    return mounts


def _bind_source(service: dict[str, Any], target: str) -> Path:
    for source, mounted in _mounts(service):
        if mounted == target:
            assert source.startswith("/"), f"{target} is a named volume, not a bind mount"
            return Path(source)
    raise AssertionError(f"nothing is mounted at {target}")


def _published(service: dict[str, Any]) -> dict[int, int]:
    ports = {}
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports[int(port["published"])] = int(port["target"])
        else:
            host, _, container = str(port).rpartition(":")
            ports[int(host.rpartition(":")[2])] = int(container.split("/")[0])
    return ports


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on", {})
    if isinstance(depends, list):
        return dict.fromkeys(depends, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in depends.items()}


# ---------------------------------------------------------------- the compose file


def test_compose_file_is_valid_and_names_every_part_of_the_system(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) == set(SERVICES) | INFRASTRUCTURE | TOOLING


def test_every_service_runs_its_own_app_on_its_own_port_from_the_one_image(
    services: dict[str, dict[str, Any]],
) -> None:
    dockerfile = Path(services["migrate"]["build"]["context"]) / services["migrate"]["build"].get(
        "dockerfile", "Dockerfile"
    )
    assert dockerfile == DOCKERFILE
    assert dockerfile.exists()
    for name, port in SERVICES.items():
        service = services[name]
        assert service["image"] == services["migrate"]["image"] == "ticketing:latest"
        assert service["build"] == services["migrate"]["build"]
        # the one launcher; its address from the service's settings (the image: HOST=0.0.0.0)
        assert service["command"] == ["python", "-m", "ticketing_common.serve", name]
        settings = importlib.import_module(f"{name}.settings").get_settings()
        assert settings.port == port
        assert "HOST=0.0.0.0" in dockerfile.read_text()
        assert "def create_app" in (ROOT / name / "app.py").read_text()
        probe = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/readyz" in probe
        assert _published(service) == {}, f"{name} is reached through the gateway only"


def test_each_service_runs_as_many_replicas_as_its_setting_asks(tmp_path: Path) -> None:
    """<PREFIX>_REPLICAS: one busy service can use every core of a bigger machine."""
    env_file = tmp_path / ".env"
    env_file.write_text("BOOKING_REPLICAS=4\nEVENT_REPLICAS=2\n")
    services = compose_config(env_file)["services"]
    replicas = {name: services[name].get("deploy", {}).get("replicas") for name in SERVICES}
    assert replicas == {
        "auth_service": 1,
        "booking_service": 4,
        "event_service": 2,
        "payment_service": 1,
        "notification_service": 1,
    }


def test_services_start_after_their_dependencies_are_healthy_and_migrated(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in SERVICES:
        assert _depends_on(services[name]) == {
            "postgres": "service_healthy",
            "redis": "service_healthy",
            "rabbitmq": "service_healthy",
            "mailpit": "service_started",
            "migrate": "service_completed_successfully",
        }
    assert _depends_on(services["migrate"]) == {"postgres": "service_healthy"}
    assert services["migrate"]["command"] == [
        "python",
        "-m",
        "ticketing_common.migrations",
        *SERVICES,
    ]
    assert _depends_on(services["nginx"]) == dict.fromkeys(SERVICES, "service_healthy")
    assert _depends_on(services["prometheus"]) == {"nginx": "service_healthy"}
    assert _depends_on(services["grafana"]) == {"prometheus": "service_healthy"}


def test_every_awaited_condition_can_be_met(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, condition in _depends_on(service).items():
            assert dependency in services, f"{name} waits for unknown {dependency}"
            if condition == "service_healthy":
                assert services[dependency].get("healthcheck", {}).get("test"), (
                    f"{name} waits for {dependency} to be healthy, which has no health check"
                )
            if condition == "service_completed_successfully":
                assert services[dependency].get("restart", "no") == "no", dependency


def test_public_ports_are_the_gateway_and_the_operator_consoles(
    services: dict[str, dict[str, Any]],
) -> None:
    published = {name: _published(s) for name, s in services.items() if _published(s)}
    assert published == PUBLISHED


def test_every_mounted_path_exists(
    services: dict[str, dict[str, Any]], config: dict[str, Any]
) -> None:
    named = set(config.get("volumes", {}))
    for name, service in services.items():
        for source, target in _mounts(service):
            if source.startswith("/"):
                assert Path(source).exists(), f"{name} mounts missing {source} at {target}"
                assert Path(source).is_relative_to(ROOT), f"{name} mounts {source} from outside"
            else:
                assert source in named, f"{name} uses undeclared volume {source}"


def test_postgres_runs_the_init_scripts_with_the_services_database_role(
    services: dict[str, dict[str, Any]],
) -> None:
    postgres = services["postgres"]
    scripts = _bind_source(postgres, "/docker-entrypoint-initdb.d")
    assert INIT_SCRIPT.parent == scripts
    app_env = services["auth_service"]["environment"]
    assert postgres["environment"]["DB_USER"] == app_env["DB_USER"]
    assert postgres["environment"]["DB_PASSWORD"] == app_env["DB_PASSWORD"]
    assert app_env["DB_HOST"] == "postgres"
    assert app_env["REDIS_ADDR"] == "redis:6379"
    assert app_env["RABBITMQ_HOST"] == "rabbitmq"
    rabbitmq = services["rabbitmq"]["environment"]
    assert (rabbitmq["RABBITMQ_DEFAULT_USER"], rabbitmq["RABBITMQ_DEFAULT_PASS"]) == (
        app_env["RABBITMQ_USER"],
        app_env["RABBITMQ_PASS"],
    )
    for name in SERVICES:
        env = services[name]["environment"]
        assert "DB_NAME" not in env, "each service keeps its own database default"
        for other, port in SERVICES.items():
            key = other.split("_")[0].upper() + "_SERVICE_URL"
            if other == "notification_service":  # nobody calls it: its messages arrive by AMQP
                assert key not in env
            else:
                assert env[key] == f"http://{other}:{port}"


def test_gateway_gets_every_template_variable_and_routes_to_the_services(
    services: dict[str, dict[str, Any]],
) -> None:
    nginx = services["nginx"]
    templates = _bind_source(nginx, "/etc/nginx/templates")
    assert (templates / GATEWAY_TEMPLATE.name).exists()
    assert _bind_source(nginx, "/etc/nginx/nginx.conf").is_file()
    needed = set(re.findall(r"\$\{([A-Z_]+)\}", GATEWAY_TEMPLATE.read_text()))
    env = nginx["environment"]
    assert needed <= set(env), f"gateway template variables not set: {needed - set(env)}"
    assert env["GATEWAY_PORT"] == "8080"
    for name, port in SERVICES.items():
        key = name.split("_")[0].upper() + "_SERVERS"
        assert env[key] == f"server {name}:{port};"
    assert "/etc/nginx/conf.d" in str(nginx.get("tmpfs", "")), (
        "the image's default server is hidden"
    )


def test_prometheus_scrapes_the_compose_services_at_their_ports(
    services: dict[str, dict[str, Any]],
) -> None:
    config_dir = _bind_source(services["prometheus"], "/etc/prometheus")
    prometheus = yaml.safe_load((config_dir / "prometheus.yml").read_text())
    for rule_file in prometheus["rule_files"]:
        assert (config_dir / rule_file).exists()
    command = services["prometheus"]["command"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in command
    for job in prometheus["scrape_configs"]:
        targets = [t for sc in job.get("static_configs", ()) for t in sc["targets"]]
        targets += [
            f"{name}:{sd['port']}" for sd in job.get("dns_sd_configs", ()) for name in sd["names"]
        ]
        assert targets, f"job {job['job_name']} scrapes nothing"
        for target in targets:
            host, port = target.split(":")
            if job["job_name"] == "prometheus":
                assert (host, port) == ("localhost", "9090")
                continue
            assert host in services, f"scrape target {target} is not a compose service"
            # each service listens on its settings' port (the launcher reads PORT)
            assert services[host]["command"][-1] == host
            settings = importlib.import_module(f"{host}.settings").get_settings()
            assert str(settings.port) == port


def test_grafana_loads_the_provisioned_data_source_and_dashboards(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    provisioning = _bind_source(grafana, "/etc/grafana/provisioning")
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "ticketing.yml").read_text())
    dashboards_path = provider["providers"][0]["options"]["path"]
    dashboards = _bind_source(grafana, dashboards_path)
    assert sorted(dashboards.glob("*.json")), "the provider's folder holds the dashboards"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (dashboards / Path(home).relative_to(dashboards_path)).exists()


def test_k6_runs_the_smoke_script_against_the_gateway_in_the_test_profile(
    services: dict[str, dict[str, Any]],
) -> None:
    k6 = services["k6"]
    assert k6["profiles"] == ["test"]
    scripts = _bind_source(k6, "/scripts")
    assert k6["command"] == ["run", "/scripts/script.js"]
    script = (scripts / "script.js").read_text()
    assert "__ENV.BASE_URL" in script
    assert "/api/events" in script
    assert k6["environment"]["BASE_URL"] == "http://nginx:8080"


# ---------------------------------------------------------------- environment


def _documented() -> dict[str, str]:
    """Variables named in .env.example (commented out or not) and their example values."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = _ENV_LINE.match(line)
        if match:
            value = re.split(r"\s+#", match.group(2), maxsplit=1)[0].strip()
            found[match.group(1)] = value
    return found


def _settings_variables() -> set[str]:
    """Every environment variable a service reads by name (the settings' aliases)."""
    names = set()
    for service in SERVICES:
        module = importlib.import_module(f"{service}.settings")
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, ServiceSettings):
                names |= {f.alias for f in value.model_fields.values() if f.alias}
    prefix = MessagingSettings.model_config.get("env_prefix", "")
    names |= {f"{prefix}{name}".upper() for name in MessagingSettings.model_fields}
    return names


def _compose_variables() -> set[str]:
    raw = COMPOSE_FILE.read_text()
    names = {m.group(1) for m in _INTERPOLATION.finditer(raw)}
    for service in yaml.safe_load(raw)["services"].values():
        env = service.get("environment") or {}
        names |= {key for key, value in env.items() if value is None}
    return names


def test_env_example_documents_every_variable_the_services_read() -> None:
    missing = sorted(_settings_variables() - set(_documented()))
    assert not missing, f".env.example does not document: {missing}"


def test_every_variable_env_example_documents_is_read_by_a_service_or_compose() -> None:
    """The other way round: nothing documented that nothing reads."""
    unread = sorted(set(_documented()) - _settings_variables() - _compose_variables())
    assert not unread, f".env.example documents what nothing reads: {unread}"


def test_env_example_documents_every_variable_compose_takes_from_env() -> None:
    missing = sorted(_compose_variables() - set(_documented()))
    assert not missing, f".env.example does not document: {missing}"


def test_values_from_env_reach_the_containers(tmp_path: Path) -> None:
    """Uncommenting every line of .env.example gives a valid stack that uses those values."""
    env_file = tmp_path / ".env"
    lines = [
        line.removeprefix("# ")
        for line in ENV_EXAMPLE.read_text().splitlines()
        if _ENV_LINE.match(line)
    ]
    lines += [
        "JWT_SECRET=from-the-env-file",
        "DB_PASSWORD=db-password-from-env",
        "RATE_LIMIT_RPS=25",
    ]
    env_file.write_text("\n".join(lines) + "\n")
    services = compose_config(env_file)["services"]
    for name in SERVICES:
        assert services[name]["environment"]["JWT_SECRET"] == "from-the-env-file"
        assert services[name]["environment"]["DB_PASSWORD"] == "db-password-from-env"
    assert services["postgres"]["environment"]["DB_PASSWORD"] == "db-password-from-env"
    assert services["nginx"]["environment"]["RATE_LIMIT_RPS"] == "25"


def test_every_service_accepts_every_example_value(tmp_path: Path) -> None:
    """Uncommenting .env.example never gives a service a value it cannot parse."""
    env_file = tmp_path / ".env"
    env_file.write_text(
        "\n".join(
            line.removeprefix("# ")
            for line in ENV_EXAMPLE.read_text().splitlines()
            if _ENV_LINE.match(line)
        )
    )
    for service in SERVICES:
        module = importlib.import_module(f"{service}.settings")
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, ServiceSettings):
                settings = value(_env_file=env_file)
                assert settings.app_env == "development"
                assert settings.db_name in DATABASES.values()


def test_without_env_file_secrets_are_left_to_the_services_defaults(
    services: dict[str, dict[str, Any]],
) -> None:
    env = services["auth_service"]["environment"]
    for secret in ("JWT_SECRET", "JWT_REFRESH_SECRET", "SERVICE_TOKEN", "ADMIN_PASSWORD"):
        assert env.get(secret) is None, f"{secret} must not be baked into docker-compose.yml"


def test_compose_names_the_payment_provider_and_an_env_file_chooses_it(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    env = services["payment_service"]["environment"]
    assert (env["PAYMENT_PROVIDER"], env["STAGING"]) == ("simulated", "false")

    env_file = tmp_path / ".env"
    env_file.write_text("APP_ENV=production\nPAYMENT_PROVIDER=chapa\n")
    chosen = compose_config(env_file)["services"]["payment_service"]["environment"]
    assert (chosen["APP_ENV"], chosen["PAYMENT_PROVIDER"]) == ("production", "chapa")


def test_compose_defaults_match_the_documented_defaults() -> None:
    documented = _documented()
    for match in _INTERPOLATION.finditer(COMPOSE_FILE.read_text()):
        name, default = match.group(1), match.group(2)
        compose_only = {"SMTP_HOST", "SMTP_PORT", "PUBLIC_BASE_URL"}  # containers' own values
        if default is not None and name not in compose_only and documented.get(name):
            assert default == documented[name], (
                f"{name}: compose {default!r} vs {documented[name]!r}"
            )


# ---------------------------------------------------------------- the image


def test_dockerfile_copies_the_shared_package_and_every_service() -> None:
    text = DOCKERFILE.read_text()
    copied = set(re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+) ", text, flags=re.MULTILINE))
    assert copied == {"pyproject.toml", "ticketing_common", *SERVICES}
    for source in copied:
        assert (ROOT / source).exists()
    ignore = DOCKERIGNORE.read_text().split()
    for source in copied:
        assert f"!{source}" in ignore, f".dockerignore keeps {source} out of the build"
    assert re.search(r"^USER (?!root)", text, flags=re.MULTILINE), "the services do not run as root"


# ---------------------------------------------------------------- init script


def _postgres_bindir() -> Path:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if not candidates:
        pytest.fail("PostgreSQL server binaries are not installed (scripts/bootstrap.sh)")
    return candidates[-1].parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def scratch_postgres() -> Iterator[tuple[Path, int, list[str]]]:
    """A throwaway PostgreSQL cluster on a free port, run as the postgres system user."""
    bindir = _postgres_bindir()
    as_postgres = ["runuser", "-u", "postgres", "--"] if getpass.getuser() == "root" else []
    workdir = Path(tempfile.mkdtemp(prefix="ticketing-initdb-"))
    data = workdir / "data"
    port = _free_port()

    def run(*command: str, check: bool = True) -> None:
        subprocess.run([*as_postgres, *command], check=check, capture_output=True, timeout=60)

    try:
        if as_postgres:
            shutil.chown(workdir, "postgres")
        run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        )
        run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(workdir / "log"),
            "-o",
            f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1",
            "start",
        )
        yield workdir, port, as_postgres
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def test_init_script_creates_every_service_database_for_the_app_role_and_is_rerunnable(
    scratch_postgres: tuple[Path, int, list[str]],
) -> None:
    socket_dir, port, as_postgres = scratch_postgres
    role, password = "ticketing-app", "it's a secret"
    env = {**os.environ, "DB_USER": role, "DB_PASSWORD": password}
    for _ in range(2):  # the second run finds everything in place and changes nothing
        result = subprocess.run(
            [
                *as_postgres,
                "env",
                f"DB_USER={role}",
                f"DB_PASSWORD={password}",
                "psql",
                "-v",
                "ON_ERROR_STOP=1",
                "--username",
                "postgres",
                "--no-password",
                "--no-psqlrc",
                "--dbname",
                "postgres",
                "-h",
                str(socket_dir),
                "-p",
                str(port),
                "-f",
                str(INIT_SCRIPT),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    for database in DATABASES.values():
        login = subprocess.run(
            [
                "psql",
                "-X",
                "-At",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                role,
                "-d",
                database,
                "-c",
                "SELECT current_user, pg_get_userbyid(datdba) FROM pg_database"
                " WHERE datname = current_database()",
            ],
            capture_output=True,
            text=True,
            env={**env, "PGPASSWORD": password},
            timeout=60,
        )
        assert login.returncode == 0, login.stderr
        assert login.stdout.strip() == f"{role}|{role}", f"{database} is owned by the app role"
