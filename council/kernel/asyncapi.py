"""The AsyncAPI 3.0.0 document of the shared event log, generated from the event catalogue.

The committed `council/kernel/asyncapi.json` is this module's output; regenerate it after changing
the catalogue with `python -m council.kernel.asyncapi`, and check it is current with
`python -m council.kernel.asyncapi --check` (the unit tests do the same).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from council.kernel.contracts import EventSpec, all_specs
from council.kernel.envelope import EventEnvelope

ASYNCAPI_VERSION = "3.0.0"
DOCUMENT_VERSION = "1.0.0"
TITLE = "Council Integrator shared event log"
KAFKA_BINDING_VERSION = "0.5.0"
DEFAULT_PATH = Path(__file__).with_name("asyncapi.json")

_REF_TEMPLATE = "#/components/schemas/{model}"
_ENVELOPE = EventEnvelope.__name__

_DESCRIPTION = """\
Every event that leaves a Council Integrator service travels on this log, wrapped in the same \
envelope: event id, type, schema version, source service, stream id and position, occurred and \
recorded times (UTC), correlation and causation ids, actor, organisation and the event's own \
`data`, described per event type below.

There is one topic per source service, named `<topic prefix>.<source>` (prefix `council` by \
default). The message key is the stream id, so one stream's events share a partition and stay in \
order; the value is the canonical JSON of the envelope (sorted keys, no insignificant whitespace, \
UTF-8), so the same event always has the same bytes. Delivery is at least once: consumers \
de-duplicate by `event_id`. Events of a type a reader does not know are carried through untouched, \
never dropped.

Every event a service publishes is chained (the audit trail): `sequence` is its 1-based position \
in its source's published sequence (which spans the topic's partitions), `prev_hash` the `hash` of \
the event before it (64 zeros before the first) and `hash` the SHA-256 (hex) of the canonical JSON \
of the envelope without `hash`. A republished event has the same sequence and bytes. The three \
fields are absent on events published before the chain existed. The `audit` channel carries \
Ed25519-signed checkpoints over each chain (`AuditCheckpointSigned`); `council audit verify` \
checks both.

The scale-out deployment runs the log on Kafka (the `kafka` server below). The embedded default \
deployment uses an embedded, file-backed log on the local machine instead, with the same topics, \
keys, partitioning and message bytes, so everything in this document applies to both.
"""


_CHANNEL_DESCRIPTIONS = {
    "audit": "Signed checkpoints over each source's audit hash chain, keyed by the source "
    "whose chain they cover. Not chained themselves: each stands on its signature.",
}


class CatalogueError(ValueError):
    """The catalogue cannot be described consistently (e.g. two schemas share a name)."""


def _add_schema(schemas: dict[str, Any], name: str, schema: Any) -> None:
    existing = schemas.get(name)
    if existing is not None and existing != schema:
        raise CatalogueError(f"two different schemas are both named {name!r}")
    schemas[name] = schema


def _add_model(schemas: dict[str, Any], model: type[BaseModel]) -> str:
    """Put `model`'s schema (and the schemas it refers to) into `schemas`; return its name."""
    schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
    for name, definition in schema.pop("$defs", {}).items():
        _add_schema(schemas, name, definition)
    name = model.__name__
    if schema != {"$ref": _REF_TEMPLATE.format(model=name)}:  # self-referencing models
        _add_schema(schemas, name, schema)
    return name


def _ref(*path: str) -> dict[str, str]:
    escaped = (part.replace("~", "~0").replace("/", "~1") for part in path)
    return {"$ref": "#/" + "/".join(escaped)}


def _payload(spec: EventSpec, envelope: dict[str, Any], data_schema: str) -> dict[str, Any]:
    """The envelope schema narrowed to one event type: its type, version, source and data."""
    payload = copy.deepcopy(envelope)
    properties = payload["properties"]
    payload["title"] = f"{spec.type} envelope"
    payload["description"] = f"The envelope of a {spec.type} event. {spec.summary}"
    properties["type"] = {"const": spec.type, "title": "Type", "type": "string"}
    properties["schema_version"] = {
        "const": spec.version,
        "title": "Schema Version",
        "type": "integer",
    }
    properties["source"] = {
        "const": spec.source,
        "description": "service that recorded it",
        "title": "Source",
        "type": "string",
    }
    properties["stream_id"] = {
        **properties["stream_id"],
        "description": f"the stream (aggregate) id: the event's `{spec.stream_field}`",
    }
    properties["data"] = _ref("components", "schemas", data_schema)
    return payload


def _operation_id(type_: str) -> str:
    return f"publish{type_[:1].upper()}{type_[1:]}"


def asyncapi_document(topic_prefix: str = "council") -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document describing every event type in the catalogue."""
    specs = all_specs()
    schemas: dict[str, Any] = {}
    envelope_name = _add_model(schemas, EventEnvelope)
    envelope = schemas[envelope_name]

    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in specs:
        if spec.data.__name__ == _ENVELOPE:
            raise CatalogueError(f"event type {spec.type}: data model may not be named {_ENVELOPE}")
        data_schema = _add_model(schemas, spec.data)
        messages[spec.type] = {
            "name": spec.type,
            "title": spec.type,
            "summary": spec.summary,
            "contentType": "application/json",
            "payload": _payload(spec, envelope, data_schema),
            "correlationId": {
                "description": "Correlation id shared by every event one request caused.",
                "location": "$message.payload#/correlation_id",
            },
            "bindings": {
                "kafka": {
                    "key": {
                        "type": "string",
                        "description": (
                            f"The stream id (the event's `{spec.stream_field}`): one stream's "
                            "events share a partition and stay in order."
                        ),
                    },
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        channel = channels.setdefault(
            spec.source,
            {
                "address": f"{topic_prefix}.{spec.source}",
                "title": f"{spec.source} events",
                "description": _CHANNEL_DESCRIPTIONS.get(
                    spec.source, f"Every event the {spec.source} service records, keyed by "
                    "stream id."),
                "messages": {},
                "bindings": {
                    "kafka": {
                        "topic": f"{topic_prefix}.{spec.source}",
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
            },
        )
        channel["messages"][spec.type] = _ref("components", "messages", spec.type)
        operations[_operation_id(spec.type)] = {
            "action": "send",
            "title": f"Publish {spec.type}",
            "summary": f"The {spec.source} service publishes {spec.type}: {spec.summary}",
            "channel": _ref("channels", spec.source),
            "messages": [_ref("channels", spec.source, "messages", spec.type)],
        }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:council-integrator:shared-event-log",
        "info": {
            "title": TITLE,
            "version": DOCUMENT_VERSION,
            "description": _DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": (
                    "Kafka-protocol broker of the scale-out deployment (local default address). "
                    "The embedded default deployment uses the embedded log instead."
                ),
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def render_document(topic_prefix: str = "council") -> str:
    """The document as committed: pretty JSON, sorted keys, trailing newline."""
    document = asyncapi_document(topic_prefix)
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_document(path: Path | str = DEFAULT_PATH, topic_prefix: str = "council") -> Path:
    """Write the document to `path`; return the path."""
    target = Path(path)
    target.write_text(render_document(topic_prefix), encoding="utf-8")
    return target


def check_document(path: Path | str = DEFAULT_PATH, topic_prefix: str = "council") -> str | None:
    """None if `path` holds the current document, else why not."""
    target = Path(path)
    try:
        current = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"{target} does not exist"
    if current != render_document(topic_prefix):
        return f"{target} is out of date with the event catalogue"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m council.kernel.asyncapi",
        description="Generate the AsyncAPI document of the shared event log from the catalogue.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the file differs from what would be generated",
    )
    parser.add_argument(
        "path", nargs="?", type=Path, default=DEFAULT_PATH, help=f"default: {DEFAULT_PATH}"
    )
    args = parser.parse_args(argv)
    if args.check:
        problem = check_document(args.path)
        if problem is not None:
            command = "python -m council.kernel.asyncapi"
            if Path(args.path).resolve() != DEFAULT_PATH.resolve():
                command += f" {args.path}"
            print(f"{problem}; regenerate it with `{command}` and commit it", file=sys.stderr)
            return 1
        print(f"{args.path} is up to date")
        return 0
    print(f"wrote {write_document(args.path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
