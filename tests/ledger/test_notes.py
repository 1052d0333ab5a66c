"""Signed notes: usage reports and case responses verify only for their signer, chain and
contract, and only as signed."""

from __future__ import annotations

import dataclasses
import json

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from registry.errors import InvalidNote
from registry.iscc.codec import code_to_bytes
from registry.ledger.notes import (
    DOMAIN_NAME,
    Action,
    CaseResponse,
    NotesDomain,
    SignedNote,
    UsageReport,
    sign,
    typed_data,
)
from registry.ledger.rules import covers
from registry.ledger.terms import GrantTerms, Period, Territories, Use, parse_time

KEY = Account.from_key(bytes.fromhex("11" * 32))
OTHER = Account.from_key(bytes.fromhex("22" * 32))
LICENCES = "0x" + "5a" * 20
DOMAIN = NotesDomain(31337, LICENCES)
# A well-formed ISCC-CODE and a datahash as multihash hex, the forms `gen` prints.
ISCC = "ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQY"
DATAHASH = "1e20" + "ab" * 32
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def report(**kw: object) -> UsageReport:
    base: dict[str, object] = {
        "reporter": KEY.address,
        "iscc": ISCC,
        "datahash": DATAHASH,
        "territory": "de",
        "use": "svod",
        "used_at": "2025-06-01",
        "nonce": 7,
    }
    return UsageReport.create(**(base | kw))  # type: ignore[arg-type]


def response(**kw: object) -> CaseResponse:
    base: dict[str, object] = {
        "party": KEY.address,
        "case_id": "0x" + "c0" * 32,
        "action": "dispute",
        "note": "We hold the exclusive licence in DE since 2024; contract attached.",
        "signed_at": parse_time("2025-06-02"),
    }
    return CaseResponse.create(**(base | kw))  # type: ignore[arg-type]


@pytest.mark.parametrize("make", [report, response])
def test_signed_note_verifies_and_survives_json(make) -> None:  # type: ignore[no-untyped-def]
    signed = sign(make(), DOMAIN, KEY)
    signed.verify(DOMAIN)
    assert signed.recover() == KEY.address
    back = SignedNote.from_json(json.dumps(signed.to_json()))
    assert back == signed
    back.verify(DOMAIN)
    assert back.digest() == signed.digest()


def test_usage_report_fields() -> None:
    note = report()
    assert note.territory == "DE" and note.use == Use.SVOD
    assert note.used_at == parse_time("2025-06-01")
    assert note.iscc_code == code_to_bytes(ISCC) and note.datahash == bytes.fromhex("ab" * 32)
    assert report(datahash="0x" + "ab" * 32) == note
    usage = note.usage("ISCC:MAIWFFZRX5UJ6QAA")
    grant = GrantTerms(Territories.of("DE"), Use.SVOD, Period(parse_time("2025-01-01")))
    assert covers(grant, usage)
    assert usage.user == KEY.address


def test_a_note_signed_for_another_chain_or_contract_fails() -> None:
    for other in (NotesDomain(1, LICENCES), NotesDomain(31337, "0x" + "5b" * 20)):
        signed = sign(report(), other, KEY)
        signed.verify(other)  # sound where it was signed...
        with pytest.raises(InvalidNote, match="signed for chain"):
            signed.verify(DOMAIN)  # ...refused here
        # Claiming this domain instead does not help: the signature then names someone else.
        moved = dataclasses.replace(signed, domain=DOMAIN)
        with pytest.raises(InvalidNote, match="not by"):
            moved.verify(DOMAIN)


def test_another_registrys_typed_data_fails() -> None:
    # Same fields under the declarations' domain name: not a note of ours.
    foreign = {**DOMAIN.as_dict(), "name": "IsccRegistry"}
    note = report()
    message = encode_typed_data(
        domain_data=foreign,
        message_types={note.TYPE: note.FIELDS},
        message_data=note.message(),
    )
    signature = bytes(KEY.sign_message(message).signature)
    with pytest.raises(InvalidNote, match="not by"):
        SignedNote(note, signature, DOMAIN).verify(DOMAIN)
    data = SignedNote(note, signature, DOMAIN).to_json()
    data["domain"]["name"] = "IsccRegistry"
    with pytest.raises(InvalidNote, match=f"not an {DOMAIN_NAME} v1 note"):
        SignedNote.from_json(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("territory", "AT"),
        ("use", Use.AVOD),
        ("used_at", parse_time("2025-06-02")),
        ("nonce", 8),
        ("datahash", bytes.fromhex("cd" * 32)),
        ("iscc_code", code_to_bytes(ISCC)[:-1] + b"\x00"),
        ("reporter", OTHER.address),
    ],
)
def test_a_tampered_usage_report_fails(field: str, value: object) -> None:
    signed = sign(report(), DOMAIN, KEY)
    tampered = dataclasses.replace(signed, note=dataclasses.replace(signed.note, **{field: value}))
    with pytest.raises(InvalidNote, match="not by"):
        tampered.verify(DOMAIN)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("action", Action.ACKNOWLEDGE),
        ("note", "We hold the exclusive licence in AT since 2024; contract attached."),
        ("case_id", bytes.fromhex("c1" * 32)),
        ("signed_at", parse_time("2025-06-03")),
        ("party", OTHER.address),
    ],
)
def test_a_tampered_case_response_fails(field: str, value: object) -> None:
    signed = sign(response(), DOMAIN, KEY)
    tampered = dataclasses.replace(signed, note=dataclasses.replace(signed.note, **{field: value}))
    with pytest.raises(InvalidNote, match="not by"):
        tampered.verify(DOMAIN)


def test_tampered_json_fails() -> None:
    data = sign(response(), DOMAIN, KEY).to_json()
    data["note"]["action"] = "withdraw"
    with pytest.raises(InvalidNote, match="not by"):
        SignedNote.from_json(data).verify(DOMAIN)


def test_someone_elses_key_fails() -> None:
    with pytest.raises(InvalidNote, match=f"the signature is by {OTHER.address}"):
        sign(report(), DOMAIN, OTHER).verify(DOMAIN)


def test_the_malleated_twin_signature_is_refused() -> None:
    signed = sign(response(), DOMAIN, KEY)
    r, s, v = (
        signed.signature[:32],
        int.from_bytes(signed.signature[32:64], "big"),
        signed.signature[64],
    )
    twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v if v in (27, 28) else v ^ 1])
    with pytest.raises(InvalidNote, match="high s"):
        dataclasses.replace(signed, signature=twin).verify(DOMAIN)
    # The replay key does not depend on the signature bytes at all.
    assert dataclasses.replace(signed, signature=twin).digest() == signed.digest()


def test_digest_is_the_eip712_hash_of_the_note() -> None:
    signed = sign(response(), DOMAIN, KEY)
    data = typed_data(signed.note, DOMAIN)
    message = encode_typed_data(full_message=data)
    assert keccak(b"\x19" + message.version + message.header + message.body) == signed.digest()
    assert data["message"]["action"] == "2" and data["primaryType"] == "CaseResponse"
    # What a wallet signs from that JSON verifies here.
    wallet = bytes(KEY.sign_message(message).signature)
    SignedNote(signed.note, wallet, DOMAIN).verify(DOMAIN)
    assert sign(response(note="other"), DOMAIN, KEY).digest() != signed.digest()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: report(territory="XX"), "unknown territory 'XX'"),
        (lambda: report(use="netflix"), "unknown use 'netflix'"),
        (lambda: report(reporter="bob"), "reporter is not an address"),
        (lambda: report(iscc="ISCC:XYZ"), "malformed usage report"),
        (lambda: report(used_at="yesterday"), "not a date"),
        (lambda: report(nonce=-1), "nonce must be an integer"),
        (lambda: response(action="ignore"), "unknown action 'ignore'"),
        (lambda: response(case_id="0x12"), "a case id is 32 bytes"),
        (lambda: response(note="x" * 5000), "longer than 4096 bytes"),
    ],
)
def test_bad_notes_name_the_problem(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidNote, match=message):
        make()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(type="Grant"), "unknown note type 'Grant'"),
        (lambda d: d.update(signature="abcd"), "0x hex"),
        (lambda d: d.update(signature="0x" + "00" * 64), "65 bytes"),
        (lambda d: d["note"].pop("nonce"), "malformed signed note"),
        (lambda d: d["domain"].update(verifyingContract="nope"), "not a contract address"),
    ],
)
def test_malformed_signed_json_is_refused(change, message: str) -> None:  # type: ignore[no-untyped-def]
    data = sign(report(), DOMAIN, KEY).to_json()
    change(data)
    with pytest.raises(InvalidNote, match=message):
        SignedNote.from_json(data).verify(DOMAIN)


# --- review (branch rev): the off-chain ERC-1271 check must match WalletSignatures.sol -----------


class _Node:
    """A node whose only account is a contract answering isValidSignature with `answer`."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.eth = self

    def get_code(self, account: str) -> bytes:
        return b"\x60\x00"

    def call(self, call: dict) -> bytes:
        return self.answer


@pytest.mark.parametrize(
    "answer",
    [
        bytes.fromhex("1626ba7e"),  # 4 bytes: returndatasize < 32, invalid on chain
        bytes.fromhex("1626ba7e") + b"\xff" * 28,  # a word that is not the padded selector
        # a fallback echoing its calldata: selector followed by the digest's first bytes
        bytes.fromhex("1626ba7e") + b"\xab" * 60,
    ],
    ids=["four-bytes", "unpadded-word", "calldata-echo"],
)
def test_review_the_wallet_check_takes_only_the_answer_the_contracts_take(answer: bytes) -> None:
    """WalletSignatures.isValid accepts only a 32-byte word equal to the selector padded with
    zeros (`eq(mload(0x00), selector)` after `gt(returndatasize(), 0x1f)`); wallet_accepts
    compares the first 4 bytes only. A contract whose fallback echoes its calldata (or any
    answer starting with the selector) then "accepts" every signature for notes and relayed
    grants, which the chain would refuse: anyone can sign usage reports and case responses as
    that contract, and the relayer pays for grants that fail on chain."""
    from registry.chain.wallets import wallet_accepts

    assert wallet_accepts(_Node(answer), OTHER.address, b"\x00" * 32, b"\x01" * 65) is False
