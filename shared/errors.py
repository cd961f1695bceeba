"""Errors that entry points turn into clear messages instead of stack traces."""


class InfrastructureUnavailable(RuntimeError):
    """A database or broker the deployment is configured to use cannot be reached."""


class PersistenceNotConfigured(RuntimeError):
    """An event store would have fallen back to memory: refused, since nothing would be kept."""


class DomainRuleBroken(Exception):
    """A command that the domain refuses (an illegal transition, a broken rule): HTTP 409."""


class NotFound(LookupError):
    """The thing named does not exist: HTTP 404."""
