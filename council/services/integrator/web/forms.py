"""HTML forms in and out: a posted form becomes the same pydantic command the HTTP API takes,
and every way it can be refused becomes a message next to the field at fault.

Fields are named by their path in the command (`population.description`, `awards.0.allocation`),
so a validation error's location names its field without a table of names. A blank field counts
as not given (the command's default, or "Required").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel, ValidationError

from council.kernel.errors import (
    ConcurrentChange,
    DomainRuleBroken,
    InvalidInput,
    NotAuthorised,
    NotFound,
)

M = TypeVar("M", bound=BaseModel)
FORM_LEVEL = ""  # the key of a message about the whole form


def parse(body: bytes) -> dict[str, list[str]]:
    """An application/x-www-form-urlencoded body: name -> values, in order."""
    return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)


@dataclass
class FormState:
    """What one form shows: the values entered and the messages about them."""

    values: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def value(self, name: str, default: str = "") -> str:
        given = self.values.get(name)
        return given[0] if given else default

    def chosen(self, name: str) -> list[str]:
        return self.values.get(name, [])

    def error(self, name: str) -> str | None:
        return self.errors.get(name)

    @property
    def message(self) -> str | None:
        return self.errors.get(FORM_LEVEL)

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    def field_errors(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.errors.items() if k != FORM_LEVEL]


def nest(values: dict[str, list[str]], lists: frozenset[str] = frozenset(),
         lines: frozenset[str] = frozenset(), skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Dotted names to nested data: `a.b` -> {"a": {"b": ...}}, `a.0.b` -> {"a": [{"b": ...}]}.
    Names in `lists` keep every value (multiple selects, checkboxes); names in `lines` split a
    text area into one item per non-blank line; blank values are left out."""
    data: dict[str, Any] = {}
    for name, given in values.items():
        if name in skip:
            continue
        if name in lists:
            value: Any = [v.strip() for v in given if v.strip()]
        elif name in lines:
            value = [line.strip() for v in given for line in v.splitlines() if line.strip()]
        else:
            value = given[-1].strip() if given else ""
            if value == "":
                continue
        _put(data, name.split("."), value)
    nested: dict[str, Any] = _listify(data)
    return nested


def _put(data: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        data = data.setdefault(part, {})
    data[path[-1]] = value


def _listify(value: Any) -> Any:
    """Dicts keyed 0, 1, 2... become lists in that order (rows left blank are simply absent)."""
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v) for k, v in value.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def friendly(error: Any) -> str:
    """A validation error as a person would say it."""
    kind, ctx = error["type"], error.get("ctx") or {}
    match kind:
        case "missing":
            return "Required"
        case "string_too_short":
            return "Required" if ctx.get("min_length") == 1 else \
                f"At least {ctx.get('min_length')} characters"
        case "string_too_long":
            return f"At most {ctx.get('max_length')} characters"
        case "too_short":
            return f"Give at least {ctx.get('min_length')}"
        case "too_long":
            return f"At most {ctx.get('max_length')}"
        case "greater_than":
            return f"Must be more than {ctx.get('gt')}"
        case "greater_than_equal":
            return f"Must be at least {ctx.get('ge')}"
        case "less_than_equal":
            return f"Must be at most {ctx.get('le')}"
        case "decimal_parsing" | "decimal_type" | "float_parsing":
            return "Enter an amount in pounds, like 12500.00"
        case "int_parsing" | "int_from_float":
            return "Enter a whole number"
        case "date_parsing" | "date_from_datetime_parsing" | "date_type":
            return "Enter a date as YYYY-MM-DD"
        case "uuid_parsing" | "uuid_type":
            return "Choose one from the list"
        case "enum" | "literal_error":
            return "Choose one of the options"
        case "string_pattern_mismatch":
            return "Not in the expected form"
        case "value_error":
            return str(error["msg"]).removeprefix("Value error, ")
        case "extra_forbidden":
            return "Not expected here"
    return str(error["msg"])


def errors_of(exc: ValidationError, values: dict[str, list[str]] | None = None,
              ) -> dict[str, str]:
    """Field name -> its first message; errors about the whole model under FORM_LEVEL."""
    found: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if loc[:1] == ["body"]:
            loc = loc[1:]
        found.setdefault(".".join(loc) if loc else FORM_LEVEL, friendly(error))
    return relocated(found, values or {})


def relocated(errors: dict[str, str], values: dict[str, list[str]]) -> dict[str, str]:
    """A group of fields left wholly blank (`population`, of `population.description` and
    `population.size`) is reported at its first field on the form, where it can be fixed; an
    item of a list entered in one field (`population.areas.2`, a line of a text area) at that
    field."""
    found: dict[str, str] = {}
    for name, message in errors.items():
        if name != FORM_LEVEL and name not in values:
            field, _, index = name.rpartition(".")
            name = field if index.isdigit() and field in values else next(
                (n for n in values if n.startswith(f"{name}.")), name)
        found.setdefault(name, message)
    return found


def validate(model: type[M], values: dict[str, list[str]], **nesting: Any) -> M | FormState:
    """The command, or the form again with a message for each field at fault."""
    try:
        return model.model_validate(nest(values, **nesting))
    except ValidationError as exc:
        return FormState(values, errors_of(exc, values))


def refused(values: dict[str, list[str]], exc: Exception) -> FormState | None:
    """The form again with why the command was refused, for the errors commands raise; None
    for anything else (which is not the person's to fix)."""
    if isinstance(exc, InvalidInput):
        return FormState(values, {exc.field or FORM_LEVEL: exc.message})
    if isinstance(exc, DomainRuleBroken | ConcurrentChange | NotAuthorised):
        return FormState(values, {FORM_LEVEL: str(exc)})
    if isinstance(exc, NotFound):
        return FormState(values, {FORM_LEVEL: str(exc.args[0]) if exc.args else "not found"})
    return None


def refused_status(exc: Exception, state: FormState) -> int:
    """The status a refused form is shown with, as the API would answer: 403 for a decision
    beyond the person's authority, 422 for a field at fault, else 409."""
    if isinstance(exc, NotAuthorised):
        return 403
    return 422 if state.field_errors() else 409
