"""Deployment settings, read from COUNCIL_* environment variables.

The embedded default needs nothing: SQLite event stores and the file-backed log under ./var/.
Set COUNCIL_DATABASE_URL=postgresql://... and COUNCIL_LOG_URL=kafka://host:port to scale out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_NAMES = ("integrator", "provider_registry", "outcomes")
ServiceName = Literal["integrator", "provider_registry", "outcomes"]

DEFAULT_PORTS: dict[str, int] = {"integrator": 8000, "provider_registry": 8001, "outcomes": 8002}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COUNCIL_", extra="ignore")

    var_dir: Path = Field(default=Path("var"), description="where embedded files live")
    database_url: str | None = Field(
        default=None,
        description="postgresql://user@host:port/db for PostgreSQL event stores and read "
        "models; unset means one SQLite file per service under var_dir",
    )
    schema_prefix: str = Field(
        default="council", description="PostgreSQL schemas are <prefix>_<service>"
    )
    log_url: str = Field(
        default="embedded", description="'embedded' (file under var_dir) or kafka://host:port"
    )
    topic_prefix: str = Field(default="council", description="Kafka topics are <prefix>.<source>")
    kafka_partitions: int = Field(default=3, ge=1, le=64)
    host: str = "127.0.0.1"
    integrator_port: int = DEFAULT_PORTS["integrator"]
    provider_registry_port: int = DEFAULT_PORTS["provider_registry"]
    outcomes_port: int = DEFAULT_PORTS["outcomes"]
    provider_registry_url: str = Field(
        default="", description="where other services reach the registry's API; '' = on host")
    workers: Literal["process", "thread"] = Field(
        default="process", description="how `council serve` runs a service's relay, "
        "projections and workers: child processes (default) or threads of the HTTP process")
    relay_interval: float = Field(default=0.05, gt=0, description="seconds between idle polls")
    worker_stall_seconds: float = Field(
        default=60.0, gt=0, description="a read model still behind the log that has not moved "
        "for this long is reported stalled by /ready")
    log_level: str = Field(default="info", description="debug shows a line per event applied "
                           "and per batch relayed; info, warning, error")
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="log lines on stderr: readable on a terminal and JSON "
        "otherwise (auto), or always json or console")
    deliveries_inbound_topic: str = ""  # "" = <topic_prefix>.deliveries.inbound (Kafka only)
    deliveries_rejects_topic: str = ""  # "" = <topic_prefix>.deliveries.rejects
    deliveries_ingest_partitions: str = ""  # inbound partitions this instance reads ("0,2"); "" all
    audit_signing_key_file: Path | None = Field(
        default=None, description="Ed25519 PEM private key signing audit checkpoints; unset: "
        "<var_dir>/audit-signing-key.pem, generated on first use")
    audit_checkpoint_every: int = Field(
        default=1000, ge=1, description="sign a checkpoint after this many new events")
    audit_checkpoint_seconds: float = Field(
        default=60.0, gt=0, description="or this long after the last one, if anything is new")
    audit_checkpoint_each_batch: bool = Field(
        default=True, description="also sign one as soon as each batch the relay publishes is "
        "on the log (a forgery at the chain's tip is then told from the real event by a "
        "signature at once)")
    personal_data_secret_file: Path | None = Field(
        default=None, description="32 random bytes from which the outcomes service derives "
        "the keys that find data subjects and wrap their keys; unset: "
        "<var_dir>/personal-data-secret, generated on first use")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        scheme = urlsplit(value).scheme
        if scheme not in ("postgresql", "postgres"):
            raise ValueError(
                f"COUNCIL_DATABASE_URL must be postgresql://... (not {scheme or value!r}); leave "
                "it unset for SQLite files under COUNCIL_VAR_DIR"
            )
        return value

    @field_validator("audit_signing_key_file", "personal_data_secret_file", mode="before")
    @classmethod
    def _unset_key_file(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("log_url")
    @classmethod
    def _known_log(cls, value: str) -> str:
        if value != "embedded" and not value.startswith(("kafka://", "embedded://")):
            raise ValueError("COUNCIL_LOG_URL must be 'embedded', embedded://DIR or kafka://h:p")
        return value

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None

    def port_of(self, service: str) -> int:
        port: int = getattr(self, f"{service}_port")
        return port

    def url_of(self, service: str) -> str:
        if service == "provider_registry" and self.provider_registry_url:
            return self.provider_registry_url.rstrip("/")
        return f"http://{self.host}:{self.port_of(service)}"

    def sqlite_path(self, name: str) -> Path:
        return self.var_dir / f"{name}.sqlite"

    def schema_of(self, name: str) -> str:
        return f"{self.schema_prefix}_{name}"
