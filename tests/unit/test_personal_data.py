"""Service users' personal data: validation, sealing per data subject, the subject key vault
(on SQLite, as in the embedded deployment), and the rules that keep it out of everything else
(rejects, error messages). The API and both deployments are in test_data_subjects_api.py and
tests/integration/test_crypto_shredding.py."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from council.kernel.contracts.outcomes import SealedServiceUser
from council.kernel.errors import InvalidInput
from council.platform.settings import Settings
from council.services.outcomes.adapters.kafka_ingest import Reject
from council.services.outcomes.adapters.personal_data import (
    MAX_SERVICE_USERS,
    ReferenceType,
    Sealer,
    ServiceUserIn,
    nhs_number_valid,
    read_service_users,
    redacted,
    seal,
    unseal,
)
from council.services.outcomes.adapters.vault import (
    VAULT_DATABASE,
    SubjectKey,
    SubjectVault,
    VaultProblem,
    load_secret,
    secret_file,
    vault_database,
)
from council.services.outcomes.domain.aggregates import (
    DataSubjectErasure,
    DeliveryReport,
    erasure_id_for,
)
from council.services.outcomes.domain.commands import DeliveryIn
from council.services.outcomes.erasure import ErasureIn

NHS = "943 476 5919"  # a valid NHS number (check digit 9)
ALICE = {"reference_type": "nhs_number", "reference": NHS, "name": "Alice Quennell",
         "date_of_birth": "1961-07-14", "postcode": "ns1 4ab", "notes": "prefers mornings"}
PROVIDER_A, PROVIDER_B = uuid4(), uuid4()


def user(**fields: Any) -> ServiceUserIn:
    return ServiceUserIn.model_validate({**ALICE, **fields})


def errors_of(exc: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]


def delivery(**fields: Any) -> dict[str, Any]:
    return {"idempotency_key": "k1", "agreement_id": str(uuid4()),
            "activity_type": "sessions_delivered", "quantity": 1,
            "period_start": "2025-04-01", "period_end": "2025-04-30", **fields}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path)


@pytest.fixture
def vault(settings: Settings) -> Any:
    opened = SubjectVault.for_settings(settings)
    yield opened
    opened.close()


def vault_bytes(settings: Settings) -> bytes:
    """Every byte of the vault's files (the database and any journal)."""
    base = settings.sqlite_path(VAULT_DATABASE)
    return b"".join(p.read_bytes() for p in base.parent.glob(base.name + "*"))


# --------------------------------------------------------------------------- validation


def test_nhs_numbers_are_checked_by_their_check_digit() -> None:
    assert nhs_number_valid("9434765919")
    assert not nhs_number_valid("9434765918")  # wrong check digit
    assert not nhs_number_valid("943476591")  # nine digits
    assert not nhs_number_valid("94347659a9")


def test_a_service_user_is_normalised() -> None:
    alice = user()
    assert (alice.reference, alice.postcode, alice.name) == (
        "9434765919", "NS1 4AB", "Alice Quennell")
    assert alice.subject_reference(PROVIDER_A) == "nhs:9434765919"
    bob = ServiceUserIn(reference=" NSC-17 ")
    assert bob.reference_type is ReferenceType.PROVIDER_REFERENCE
    assert bob.subject_reference(PROVIDER_A) == f"provider:{PROVIDER_A}:NSC-17"


@pytest.mark.parametrize(("fields", "field"), [
    ({"reference": "943 476 5918"}, "reference"),
    ({"reference": ""}, "reference"),
    ({"reference_type": "provider_reference", "reference": "NSC\x0017"}, "reference"),
    ({"reference_type": "passport"}, "reference_type"),
    ({"postcode": "SW1A 1A"}, "postcode"),
    ({"date_of_birth": (date.today() + timedelta(days=1)).isoformat()}, "date_of_birth"),
    ({"date_of_birth": "1899-12-31"}, "date_of_birth"),
    ({"date_of_birth": "14/07/1961"}, "date_of_birth"),
    ({"name": "x" * 201}, "name"),
    ({"notes": "x" * 2001}, "notes"),
    ({"ethnicity": "not asked for"}, "ethnicity"),
])
def test_bad_personal_data_is_refused_naming_the_field_and_never_repeating_it(
    fields: dict[str, Any], field: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        user(**fields)
    (found, message), *_ = errors_of(caught.value)
    assert found == field
    for value in fields.values():
        if len(str(value)) > 3:
            assert str(value) not in message


def test_the_repr_of_a_service_user_holds_no_personal_data() -> None:
    shown = repr(user()) + str(DeliveryIn.model_validate(delivery(service_users=[ALICE])))
    for value in ("Alice", "9434765919", "1961", "NS1", "mornings"):
        assert value not in shown


def test_a_report_names_each_person_once_and_at_most_a_hundred() -> None:
    with pytest.raises(ValidationError) as twice:
        DeliveryIn.model_validate(delivery(service_users=[ALICE, {**ALICE, "name": "A Q"}]))
    assert errors_of(twice.value)[0][0] == "service_users"
    many = [{"reference": f"ref-{i}"} for i in range(MAX_SERVICE_USERS + 1)]
    with pytest.raises(ValidationError) as crowd:
        DeliveryIn.model_validate(delivery(service_users=many))
    assert errors_of(crowd.value)[0][0] == "service_users"
    assert DeliveryIn.model_validate(delivery(service_users=[])).service_users is None
    # The same reference as an NHS number and as a provider's reference are two people.
    both = DeliveryIn.model_validate(delivery(service_users=[
        {"reference": "9434765919", "reference_type": "nhs_number"},
        {"reference": "9434765919"}]))
    assert both.service_users is not None
    assert len(both.service_users) == 2


def test_an_erasure_names_one_subject_whose_provider_reference_names_its_provider() -> None:
    base = {"legal_basis": "consent_withdrawn", "reason": "DSR-1"}
    with pytest.raises(ValidationError):
        ErasureIn.model_validate(base)
    with pytest.raises(ValidationError):
        ErasureIn.model_validate({**base, "subject_id": str(uuid4()),
                                  "service_user": {"reference": NHS,
                                                   "reference_type": "nhs_number"}})
    with pytest.raises(ValidationError) as whose:
        ErasureIn.model_validate({**base, "service_user": {"reference": "NSC-17"}})
    assert errors_of(whose.value)[0][0] == "service_user.provider_id"
    with pytest.raises(ValidationError) as basis:
        ErasureIn.model_validate({**base, "subject_id": str(uuid4()), "legal_basis": "bored"})
    assert errors_of(basis.value)[0][0] == "legal_basis"
    ok = ErasureIn.model_validate({**base, "service_user": {
        "reference": NHS, "reference_type": "nhs_number"}})
    assert ok.service_user is not None
    assert ok.service_user.reference == "9434765919"


# --------------------------------------------------------------------------- domain rules


def test_an_erasure_is_one_per_subject_and_says_why() -> None:
    subject = uuid4()
    assert erasure_id_for(subject) == erasure_id_for(subject) != erasure_id_for(uuid4())
    with pytest.raises(InvalidInput) as why:
        DataSubjectErasure(id=erasure_id_for(subject), subject_id=subject,  # type: ignore[call-arg]
                           legal_basis="objection", reason="  ", requested_on=None)
    assert why.value.field == "reason"
    erasure = DataSubjectErasure(  # type: ignore[call-arg]
        id=erasure_id_for(subject), subject_id=subject, legal_basis="objection",
        reason="DSR-7", requested_on="2026-05-01")
    assert (erasure.subject_id, erasure.legal_basis) == (subject, "objection")


def test_a_report_naming_no_one_is_stored_as_before_and_one_naming_people_says_who() -> None:
    fields = {"agreement_id": uuid4(), "provider_id": uuid4(), "activity_type": "meals",
              "quantity": Decimal(3), "unit": "meals", "period_start": "2025-04-01",
              "period_end": "2025-04-30", "location": None, "idempotency_key": "k",
              "corrects": None, "channel": "http"}
    plain = DeliveryReport.report(uuid4(), **fields)
    (event,) = plain.collect_events()
    assert type(event) is DeliveryReport.Reported
    assert "service_users" not in vars(event)
    assert plain.service_users is None
    sealed = [{"subject_id": str(uuid4()), "key_id": str(uuid4()), "alg": "A256GCM",
               "nonce": "AAAAAAAAAAAAAAAA", "ciphertext": "AAAA"}]
    named = DeliveryReport.report(uuid4(), **fields, service_users=sealed)
    (event,) = named.collect_events()
    assert isinstance(event, DeliveryReport.Reported)
    assert event.service_users == sealed  # type: ignore[attr-defined]
    rebuilt = event.mutate(None)
    assert isinstance(rebuilt, DeliveryReport)
    assert (rebuilt.service_users, rebuilt.quantity) == (sealed, Decimal(3))


# --------------------------------------------------------------------------- sealing


def test_a_sealed_record_opens_only_with_its_key_for_its_report_and_subject(
    vault: SubjectVault,
) -> None:
    key, other = vault.new_key(), vault.new_key()
    delivery_id = uuid4()
    sealed = seal(key, delivery_id, user())
    SealedServiceUser.model_validate(sealed)  # the published contract
    text = json.dumps(sealed)
    for value in ("Alice", "9434765919", "1961-07-14", "NS1 4AB", "mornings"):
        assert value not in text
    assert unseal(key, delivery_id, sealed) == user().plaintext()
    assert unseal(other, delivery_id, sealed) is None  # another subject's key
    assert unseal(key, uuid4(), sealed) is None  # moved to another report
    # Passed off as another subject's record, even with the right key bytes: refused.
    relabelled = SubjectKey(other.subject_id, key.key_id, key.key)
    assert unseal(relabelled, delivery_id, {**sealed, "subject_id": str(other.subject_id)}) is None
    raw = bytearray(base64.b64decode(sealed["ciphertext"]))
    raw[0] ^= 1
    tampered = {**sealed, "ciphertext": base64.b64encode(bytes(raw)).decode()}
    assert unseal(key, delivery_id, tampered) is None
    assert seal(key, delivery_id, user())["nonce"] != sealed["nonce"]  # a fresh nonce each


# --------------------------------------------------------------------------- the vault


def test_the_secret_is_made_once_readable_by_its_owner_only(settings: Settings) -> None:
    first = load_secret(settings)
    assert len(first) == 32
    assert load_secret(settings) == first
    mode = stat.S_IMODE(os.stat(secret_file(settings)).st_mode)
    assert mode == 0o600


def test_a_configured_secret_must_exist_and_be_32_bytes(tmp_path: Path) -> None:
    missing = Settings(var_dir=tmp_path, personal_data_secret_file=tmp_path / "nope")
    with pytest.raises(VaultProblem, match="COUNCIL_PERSONAL_DATA_SECRET_FILE"):
        load_secret(missing)
    short = tmp_path / "short"
    short.write_bytes(b"too short")
    with pytest.raises(VaultProblem, match="32 bytes"):
        load_secret(Settings(var_dir=tmp_path, personal_data_secret_file=short))


def test_lookups_are_keyed_by_the_deployment_secret(tmp_path: Path) -> None:
    one = SubjectVault(vault_database(Settings(var_dir=tmp_path / "a")), b"1" * 32)
    two = SubjectVault(vault_database(Settings(var_dir=tmp_path / "b")), b"2" * 32)
    try:
        assert one.lookup_of("nhs:9434765919") == one.lookup_of("nhs:9434765919")
        assert one.lookup_of("nhs:9434765919") != two.lookup_of("nhs:9434765919")
        assert "9434765919" not in one.lookup_of("nhs:9434765919")
    finally:
        one.close()
        two.close()


def test_keys_are_stored_wrapped_and_found_by_lookup_or_subject(
    vault: SubjectVault, settings: Settings,
) -> None:
    key = vault.new_key()
    lookup = vault.lookup_of("nhs:9434765919")
    assert vault.add({lookup: key}) == {lookup: key}
    assert vault.by_lookup([lookup]) == {lookup: key}
    assert vault.by_subject([key.subject_id]) == {key.subject_id: key}
    assert key.key not in vault_bytes(settings)  # wrapped, never in the clear
    assert "key=" not in repr(key)
    assert key.key.hex() not in repr(key)
    with vault.db.transaction() as tx:
        (stored,) = tx.execute("SELECT * FROM data_subject_keys")
    assert "9434765919" not in json.dumps([str(v) for v in stored])


def test_the_first_writer_of_a_new_subject_wins(vault: SubjectVault) -> None:
    lookup = vault.lookup_of("provider:x:NSC-17")
    first, second = vault.new_key(), vault.new_key()
    vault.add({lookup: first})
    assert vault.add({lookup: second}) == {lookup: first}


def test_a_wrong_secret_cannot_unwrap_the_keys(settings: Settings, vault: SubjectVault) -> None:
    key = vault.new_key()
    vault.add({vault.lookup_of("nhs:9434765919"): key})
    stranger = SubjectVault(vault_database(settings), b"x" * 32)
    try:
        with pytest.raises(VaultProblem, match="secret"):
            stranger.by_subject([key.subject_id])
    finally:
        stranger.close()


def test_forgetting_a_subject_destroys_its_key_in_the_file(
    vault: SubjectVault, settings: Settings,
) -> None:
    keys = {vault.lookup_of(f"nhs:{n}"): vault.new_key() for n in ("9434765919", "4010232137")}
    vault.add(keys)
    (alice_lookup, alice), (_, bob) = sorted(keys.items())
    with vault.db.transaction() as tx:
        (wrapped,) = tx.execute("SELECT wrapped_key FROM data_subject_keys WHERE subject_id = ?",
                                (str(alice.subject_id),))[0]
    assert wrapped.encode() in vault_bytes(settings)
    assert vault.forget(alice.subject_id) is True
    assert vault.forget(alice.subject_id) is False  # once
    assert vault.by_subject([alice.subject_id, bob.subject_id]) == {bob.subject_id: bob}
    assert vault.by_lookup([alice_lookup]) == {}  # the reference is forgotten too
    assert vault.erased([alice.subject_id, bob.subject_id]) == {alice.subject_id}
    on_disk = vault_bytes(settings)
    assert wrapped.encode() not in on_disk  # overwritten, not just unlinked from the table
    assert alice_lookup.encode() not in on_disk
    assert not list(settings.var_dir.glob("*-journal"))
    assert not list(settings.var_dir.glob("*-wal"))
    assert vault.forget(uuid4()) is False  # never known: no tombstone
    assert len(vault.erased([alice.subject_id, bob.subject_id, uuid4()])) == 1


# --------------------------------------------------------------------------- a batch


def test_a_batch_seals_each_person_with_one_key_stored_before_use(vault: SubjectVault) -> None:
    alice, bob = user(), ServiceUserIn(reference="NSC-17", name="Bob")
    sealer = Sealer(vault, PROVIDER_A, [alice, bob, alice])
    d1, d2 = uuid4(), uuid4()
    first = sealer.seal(d1, [alice, bob])
    again = sealer.seal(d2, [alice])
    assert first[0]["subject_id"] == again[0]["subject_id"] != first[1]["subject_id"]
    assert vault.by_subject([UUID(first[0]["subject_id"])]) == {}  # not stored yet
    assert sealer.commit() is True
    keys = vault.by_subject([UUID(r["subject_id"]) for r in first])
    assert unseal(keys[UUID(again[0]["subject_id"])], d2, again[0]) == alice.plaintext()
    # The same NHS number from another provider is the same person; a provider's own
    # reference is another person there.
    other = Sealer(vault, PROVIDER_B, [alice, bob])
    there = other.seal(uuid4(), [alice, bob])
    assert there[0]["subject_id"] == first[0]["subject_id"]
    assert there[1]["subject_id"] != first[1]["subject_id"]


def test_a_batch_that_loses_the_race_for_a_new_subject_seals_again(vault: SubjectVault) -> None:
    alice = user()
    mine, theirs = Sealer(vault, PROVIDER_A, [alice]), Sealer(vault, PROVIDER_B, [alice])
    d = uuid4()
    lost = mine.seal(d, [alice])
    theirs.seal(uuid4(), [alice])
    assert theirs.commit() is True
    assert mine.commit() is False
    resealed = mine.seal(d, [alice])
    assert resealed[0]["subject_id"] != lost[0]["subject_id"]
    assert mine.commit() is True
    (key,) = vault.by_subject([UUID(resealed[0]["subject_id"])]).values()
    assert unseal(key, d, resealed[0]) == alice.plaintext()


def test_a_replay_names_the_same_people_or_not(vault: SubjectVault) -> None:
    alice, bob = user(), ServiceUserIn(reference="NSC-17")
    sealer = Sealer(vault, PROVIDER_A, [alice, bob])
    d = uuid4()
    stored = sealer.seal(d, [alice, bob])
    assert sealer.same(d, stored, [alice, bob])  # before the keys are stored, too
    sealer.commit()
    assert sealer.same(d, stored, [alice, bob])
    assert not sealer.same(d, stored, [alice])
    assert not sealer.same(d, stored, [alice, bob.model_copy(update={"name": "Robert"})])
    assert not sealer.same(d, None, [alice])
    assert sealer.same(d, None, None)
    vault.forget(UUID(stored[0]["subject_id"]))
    # An erased subject cannot be compared (by the next batch: a batch keeps the keys it
    # found while it runs): the rest still is.
    later = Sealer(vault, PROVIDER_A, [alice, bob])
    assert later.same(d, stored, [alice.model_copy(update={"name": "Someone"}), bob])
    assert not later.same(d, stored, [alice, bob.model_copy(update={"notes": "new"})])


def test_reading_back_opens_only_what_the_reader_may_see(vault: SubjectVault) -> None:
    alice, bob = user(), ServiceUserIn(reference="NSC-17", name="Bob")
    sealer = Sealer(vault, PROVIDER_A, [alice, bob])
    d1, d2 = uuid4(), uuid4()
    records = {d1: sealer.seal(d1, [alice, bob]), d2: sealer.seal(d2, [bob])}
    sealer.commit()
    shown = read_service_users(vault, records, {d1})
    assert [(v.state, v.name) for v in shown[d1]] == [("readable", "Alice Quennell"),
                                                      ("readable", "Bob")]
    assert shown[d1][0].date_of_birth == date(1961, 7, 14)
    assert [(v.state, v.name) for v in shown[d2]] == [("withheld", None)]
    vault.forget(UUID(records[d1][0]["subject_id"]))
    after = read_service_users(vault, records, {d1, d2})
    assert [v.state for v in after[d1]] == ["erased", "readable"]
    assert after[d1][0].model_dump(exclude={"subject_id", "state"}) == dict.fromkeys(
        ("reference_type", "reference", "name", "date_of_birth", "postcode", "notes"))
    assert read_service_users(None, records, {d1})[d1][0].state == "unavailable"


# --------------------------------------------------------------------------- keeping it out


def test_rejects_never_repeat_personal_data() -> None:
    report = json.dumps(delivery(service_users=[ALICE], location="Hall")).encode()
    kept, removed = redacted(report)
    assert removed
    assert kept is not None
    body = json.loads(kept)
    assert body["location"] == "Hall"
    assert "1 service user" in body["service_users"]
    assert b"Alice" not in kept
    assert redacted(b'{"service_users": [{"name": "Alice"') == (None, True)  # not JSON
    assert redacted(b'{"quantity": ') == (b'{"quantity": ', False)
    assert redacted(b'["service_users"]') == (None, True)
    plain = json.dumps(delivery()).encode()
    assert redacted(plain) == (plain, False)
    assert redacted(None) == (None, False)
    reject = Reject("bad", "service_users.0.postcode", "t", 0, 7, b"k", report)
    published = json.loads(reject.to_json())
    assert published["original_redacted"] is True
    assert "Alice" not in published["original"]
    assert published["field"] == "service_users.0.postcode"
    assert "original_redacted" not in json.loads(Reject("bad", None, "t", 0, 8, None,
                                                        plain).to_json())


def test_the_audit_timeline_says_a_report_names_people_without_showing_them() -> None:
    from council.services.integrator.web.render import describe

    gist = describe({"quantity": "3", "unit": "sessions",
                     "service_users": [{"subject_id": str(uuid4())}] * 2})
    assert gist == "3 sessions; names 2 service users (personal data, encrypted)"
    assert describe({"reason": "DSR-7", "legal_basis": "objection"}) == (
        "DSR-7; Legal basis: objection")


def test_the_erase_command_refuses_a_bad_request_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from council.tools.cli import main

    erase = ["privacy", "erase", "--legal-basis", "objection", "--reason", "DSR-9", "--by", "Sam"]
    monkeypatch.setattr("sys.stdin", io.StringIO("943 476 5918\n"))
    assert main([*erase, "--reference-stdin"]) == 2
    said = capsys.readouterr().err
    assert "service_user.reference: not a valid NHS number" in said
    assert "943 476 5918" not in said
    assert main([*erase, "--subject-id", "not-a-uuid"]) == 2
    assert "subject_id" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*erase[:-2], "--subject-id", str(uuid4())])  # --by is required
