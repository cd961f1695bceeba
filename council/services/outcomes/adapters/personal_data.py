"""Personal data about service users in delivery reports: how it is validated, sealed per data
subject, read back by those who may see it, and kept out of everything else.

A delivery report may name the service users it was for (`service_users`, see
`ServiceUserIn`). Each is sealed with that subject's own key from the vault
(council.services.outcomes.adapters.vault) before the report is stored: the event in the store, and
so on the shared log, in every read model and every export, holds only the subject id, the key id, a
nonce and the ciphertext (council.kernel.contracts.outcomes.SealedServiceUser). Erasing a subject's
key makes all of it unreadable at once, and changes no byte of the log: the audit chain still
verifies and every read model still replays (they hold the ciphertext, or nothing).

Who may read it: the council's writers (integrator admins and commissioners) and the provider
that reported it. Council staff see that a report names service users, and their subject ids,
but not who they are; regulators read the log (ciphertext) and no read model that decrypts.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from council.kernel import clock
from council.kernel.text import MULTI_LINE, ONE_LINE
from council.platform.identity import Principal, Role
from council.services.outcomes.adapters.vault import SubjectKey, SubjectVault

MAX_SERVICE_USERS = 100  # per report: a session's attendance list
ALG = "A256GCM"
READERS = frozenset({Role.INTEGRATOR_ADMIN, Role.COMMISSIONER})  # and the reporting provider
_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})$")
_EARLIEST_BIRTH = date(1900, 1, 1)


class ReferenceType(StrEnum):
    """What a service user's reference is: an NHS number names the same person whichever
    provider reports them; a provider's own case reference only within that provider."""

    NHS_NUMBER = "nhs_number"
    PROVIDER_REFERENCE = "provider_reference"


PersonalText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                max_length=200), ONE_LINE]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
                  MULTI_LINE]


def nhs_number_valid(digits: str) -> bool:
    """The NHS number's modulus 11 check digit."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


class SubjectReference(BaseModel):
    """What identifies a service user: their NHS number, or the provider's own reference."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # Declared (so validated) before `reference`, whose check depends on it.
    reference_type: ReferenceType = Field(
        default=ReferenceType.PROVIDER_REFERENCE,
        description="nhs_number (10 digits, spaces allowed, check digit checked) or the "
        "provider's own case reference")
    reference: str = Field(min_length=1, max_length=100, repr=False,
                           examples=["NSC-2026-00417"])

    # Messages never repeat the value: errors reach logs, 422 bodies and the rejects topic.
    @field_validator("reference")
    @classmethod
    def _normalised(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("reference_type") is ReferenceType.NHS_NUMBER:
            digits = re.sub(r"[\s-]", "", value)
            if not nhs_number_valid(digits):
                raise ValueError("not a valid NHS number (10 digits with a correct check digit)")
            return digits
        if any(not ch.isprintable() for ch in value):
            raise ValueError("a reference is printable text, without control characters")
        return value

    def subject_reference(self, provider_id: UUID | None) -> str:
        """What identifies the person: an NHS number on its own, a provider's reference
        within that provider."""
        if self.reference_type is ReferenceType.NHS_NUMBER:
            return f"nhs:{self.reference}"
        return f"provider:{provider_id}:{self.reference}"


class ServiceUserIn(SubjectReference):
    """A person a delivery was for. Only `reference` is required. Everything here is personal
    data: it is sealed before it is stored, never logged and never echoed in an error (the
    fields are left out of this model's repr too)."""

    name: PersonalText | None = Field(default=None, repr=False)
    date_of_birth: date | None = Field(default=None, repr=False)
    postcode: str | None = Field(default=None, max_length=10, repr=False)
    notes: Notes | None = Field(default=None, repr=False)

    @field_validator("date_of_birth")
    @classmethod
    def _plausible_birth(cls, value: date | None) -> date | None:
        if value is not None and not _EARLIEST_BIRTH <= value <= clock.now().date():
            raise ValueError("date_of_birth must be a past date from 1900 on")
        return value

    @field_validator("postcode")
    @classmethod
    def _uk_postcode(cls, value: str | None) -> str | None:
        if value is None:
            return None
        found = _POSTCODE.match(re.sub(r"\s+", " ", value.upper()))
        if found is None:
            raise ValueError("not a UK postcode (the form is like AB1 2CD)")
        return f"{found[1]} {found[2]}"

    def plaintext(self) -> dict[str, Any]:
        return {"reference_type": self.reference_type.value, "reference": self.reference,
                "name": self.name, "postcode": self.postcode, "notes": self.notes,
                "date_of_birth": self.date_of_birth.isoformat() if self.date_of_birth else None}


def distinct_references(users: list[ServiceUserIn] | None) -> list[ServiceUserIn] | None:
    """A report names each person once (an AfterValidator of DeliveryIn.service_users)."""
    if not users:
        return None  # an empty list says what absence says
    seen: set[tuple[ReferenceType, str]] = set()
    for user in users:
        key = (user.reference_type, user.reference)
        if key in seen:
            raise ValueError("the same service user is named twice in one report")
        seen.add(key)
    return users


# ---------------------------------------------------------------------- sealing


def _aad(delivery_id: UUID, subject_id: UUID) -> bytes:
    return f"council:service-user:{delivery_id}:{subject_id}".encode()


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal(key: SubjectKey, delivery_id: UUID, user: ServiceUserIn) -> dict[str, str]:
    """One service user's record as the event carries it (a SealedServiceUser)."""
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key.key).encrypt(nonce, _canonical(user.plaintext()),
                                     _aad(delivery_id, key.subject_id))
    return {"subject_id": str(key.subject_id), "key_id": str(key.key_id), "alg": ALG,
            "nonce": base64.b64encode(nonce).decode(),
            "ciphertext": base64.b64encode(sealed).decode()}


def unseal(key: SubjectKey, delivery_id: UUID, sealed: dict[str, Any]) -> dict[str, Any] | None:
    """The personal data in a sealed record, or None if it does not open with this key (for
    this report and subject)."""
    if str(sealed.get("key_id")) != str(key.key_id) or sealed.get("alg", ALG) != ALG:
        return None
    try:
        plain = AESGCM(key.key).decrypt(base64.b64decode(sealed["nonce"]),
                                        base64.b64decode(sealed["ciphertext"]),
                                        _aad(delivery_id, key.subject_id))
    except (InvalidTag, ValueError, KeyError):
        return None
    found: dict[str, Any] = json.loads(plain)
    return found


def subjects_of(sealed: Iterable[dict[str, Any]]) -> set[UUID]:
    return {UUID(str(s["subject_id"])) for s in sealed}


class Sealer:
    """Seals one delivery batch's service users. The subjects already known are found with one
    query for the whole batch; new subjects get keys in memory, stored by `commit` before any
    report sealed with them is. If another writer stored the same new subject meanwhile,
    `commit` says so and the batch is planned (so sealed) again with that subject's key."""

    def __init__(self, vault: SubjectVault, provider_id: UUID,
                 users: Iterable[ServiceUserIn]) -> None:
        self.vault = vault
        self.provider_id = provider_id
        self._references = {u.subject_reference(provider_id) for u in users}
        self._lookups: dict[str, str] = {}  # reference -> lookup
        self._known: dict[str, SubjectKey] | None = None  # lookup -> key, once asked
        self._staged: dict[str, SubjectKey] = {}

    def _lookup(self, reference: str) -> str:
        if reference not in self._lookups:
            self._lookups[reference] = self.vault.lookup_of(reference)
        return self._lookups[reference]

    def _known_keys(self) -> dict[str, SubjectKey]:
        if self._known is None:
            self._known = self.vault.by_lookup([self._lookup(r) for r in self._references])
        return self._known

    def seal(self, delivery_id: UUID, users: Sequence[ServiceUserIn]) -> list[dict[str, str]]:
        known = self._known_keys()
        sealed: list[dict[str, str]] = []
        for user in users:
            lookup = self._lookup(user.subject_reference(self.provider_id))
            key = known.get(lookup) or self._staged.get(lookup)
            if key is None:
                key = self._staged[lookup] = self.vault.new_key()
            sealed.append(seal(key, delivery_id, user))
        return sealed

    def commit(self) -> bool:
        """Store the new subjects; False if any lost a race (seal again, then commit)."""
        if not self._staged:
            return True
        stored = self.vault.add(self._staged)
        won = all(stored.get(lookup) == key for lookup, key in self._staged.items())
        self._known_keys().update(stored)
        self._staged.clear()
        return won

    def same(self, delivery_id: UUID, sealed: list[dict[str, Any]] | None,
             users: Sequence[ServiceUserIn] | None) -> bool:
        """Whether a replayed report names the same service users as the stored one. A subject
        erased since cannot be compared: it counts as the same (the replay stores nothing)."""
        sealed, users = sealed or [], users or []
        if len(sealed) != len(users):
            return False
        # A report new in this batch may be sealed with keys not stored yet.
        held = {k.subject_id: k for k in [*self._staged.values(), *(self._known or {}).values()]}
        wanted = subjects_of(sealed)
        keys = {s: held[s] for s in wanted if s in held}
        keys.update(self.vault.by_subject(wanted - set(keys)) if wanted - set(keys) else {})
        for record, user in zip(sealed, users, strict=True):
            key = keys.get(UUID(str(record["subject_id"])))
            if key is not None and unseal(key, delivery_id, record) != user.plaintext():
                return False
        return True


# ---------------------------------------------------------------------- reading


class ServiceUserView(BaseModel):
    """A service user named in a report, as the reader may see them: `readable` with the
    personal data, `withheld` (the reader may not see it), `erased` (the subject's key was
    destroyed: nobody can read it any more) or `unavailable` (no key found)."""

    subject_id: UUID
    state: Literal["readable", "withheld", "erased", "unavailable"]
    reference_type: ReferenceType | None = None
    reference: str | None = None
    name: str | None = None
    date_of_birth: date | None = None
    postcode: str | None = None
    notes: str | None = None


def may_read(principal: Principal, provider_id: UUID) -> bool:
    """Council writers, and the provider that reported it."""
    return principal.role in READERS or (principal.role is Role.PROVIDER
                                         and principal.provider_id == provider_id)


def read_service_users(
    vault: SubjectVault | None, records: dict[UUID, list[dict[str, Any]]],
    readable: set[UUID],
) -> dict[UUID, list[ServiceUserView]]:
    """Each report's service users (report id -> its sealed records), opened for the reports
    in `readable`: one query for the keys of every subject shown, one for the erased."""
    subjects = {s for rid, sealed in records.items() for s in subjects_of(sealed)}
    keys = vault.by_subject(subjects) if vault and readable and subjects else {}
    erased = vault.erased(subjects - set(keys)) if vault and subjects else set()
    views: dict[UUID, list[ServiceUserView]] = {}
    for report_id, sealed in records.items():
        shown: list[ServiceUserView] = []
        for record in sealed:
            subject = UUID(str(record["subject_id"]))
            key = keys.get(subject)
            opened = unseal(key, report_id, record) if key and report_id in readable else None
            if opened is not None:
                shown.append(ServiceUserView(subject_id=subject, state="readable", **opened))
            elif subject in erased:
                shown.append(ServiceUserView(subject_id=subject, state="erased"))
            elif report_id not in readable:
                shown.append(ServiceUserView(subject_id=subject, state="withheld"))
            else:
                shown.append(ServiceUserView(subject_id=subject, state="unavailable"))
        views[report_id] = shown
    return views


# ---------------------------------------------------------------------- keeping it out


def redacted(original: bytes | None) -> tuple[bytes | None, bool]:
    """A rejected message as the rejects topic may repeat it: its service users replaced by
    a note (the field at fault is still named by the reject). A message that is not a JSON
    object and might hold them is left out whole. Returns the text and whether it changed."""
    if original is None:
        return None, False
    try:
        body = json.loads(original)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read
        suspect = b"service" in original.lower() or b"\\u" in original
        return (None, True) if suspect else (original, False)
    if not isinstance(body, dict):
        return (None, True) if b"service" in original.lower() else (original, False)
    if "service_users" not in body:
        return original, False
    users = body["service_users"]
    count = len(users) if isinstance(users, list) else 1
    body["service_users"] = f"[{count} service user record(s) removed: personal data is " \
                            "never repeated]"
    return json.dumps(body, ensure_ascii=False).encode(), True


class PersonalData:
    """What the outcomes application and its entry points use: the vault, sealing per batch,
    reading back."""

    def __init__(self, vault: SubjectVault) -> None:
        self.vault = vault

    def sealer(self, provider_id: UUID,
               users: Iterable[ServiceUserIn]) -> Sealer:
        return Sealer(self.vault, provider_id, users)

    def subject_of(self, reference: str) -> UUID | None:
        """The subject a (qualified) reference names now, if any."""
        found = self.vault.by_lookup([self.vault.lookup_of(reference)])
        return next(iter(found.values())).subject_id if found else None

    def close(self) -> None:
        self.vault.close()
