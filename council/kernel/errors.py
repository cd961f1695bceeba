"""Errors that entry points turn into clear messages instead of stack traces."""


class InfrastructureUnavailable(RuntimeError):
    """A database or broker the deployment is configured to use cannot be reached."""


class PersistenceNotConfigured(RuntimeError):
    """An event store would have fallen back to memory: refused, since nothing would be kept."""


class DomainRuleBroken(Exception):
    """A command that the domain refuses (an illegal transition, a broken rule): HTTP 409."""


class NotAuthorised(PermissionError):
    """The person acting has no authority for this decision (a scheme of delegation's limit,
    or they proposed what they would approve): HTTP 403, naming the limit."""


class NotFound(LookupError):
    """The thing named does not exist: HTTP 404."""


class InvalidInput(ValueError):
    """Input that parses but breaks a rule about one field: HTTP 422 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ConcurrentChange(RuntimeError):
    """Someone else changed the same thing first: HTTP 409, safe to retry."""


class ContractViolation(RuntimeError):
    """An event about to be stored would not match its published contract: a programming error,
    refused before anything is stored (HTTP 500), so the shared log never carries poison."""
