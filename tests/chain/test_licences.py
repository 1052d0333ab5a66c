"""The licence ledger (contracts/LicenceRegistry.sol) on a real Hardhat node: every contract
rule refuses bad input with its custom error, signatures bind to one chain and one ledger,
nothing can be replayed, and a hostile smart wallet cannot sink a relayer's batch."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import pytest
from chain_helpers import deploy_mock, mock_contract
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.exceptions import ContractCustomError, Web3RPCError
from web3.logs import DISCARD

from registry.chain.artifact import LICENCES_NAME
from registry.chain.contract import Registry, decode_revert
from registry.chain.devnet import deploy_registry, dev_account
from registry.chain.licences import (
    WALLET_CHECK_GAS,
    ZERO_ADDRESS,
    ZERO_HASH,
    GrantRequest,
    LicenceDomain,
    SignedGrant,
    Termination,
    grant_direct,
    grant_id_of,
    licence_domain,
    prepare_grant,
    prepare_termination,
    relay_grants,
    sign_grant,
    sign_termination,
    submit_grant,
    submit_termination,
    terminate_direct,
)
from registry.errors import InvalidGrant

pytestmark = pytest.mark.chain

VALID, BURN_GAS, REVERT, SHORT, REJECT = range(5)
ISCC_ID = (1_700_000_000_000_000 << 12) | 0
SVOD, AVOD = 1 << 3, 1 << 4


def terms(**changes: Any) -> dict[str, Any]:
    """A well-formed grant's terms by their Solidity names (SVOD in AT and DE, 2025-2026)."""
    fields = {
        "licensee": ZERO_ADDRESS,
        "parent": ZERO_HASH,
        "territories": b"ATDE",
        "worldwide": False,
        "uses": SVOD,
        "conditions": 0b101,
        "start": 1_735_689_600,
        "end": 1_767_225_600,
        "exclusive": False,
        "sublicensable": False,
        "termsUrl": "https://example.com/terms.pdf",
        "termsHash": b"\x11" * 32,
    }
    return fields | changes


def raw_grant(grantor: str, nonce: int = 1, deadline: int = 2**40, **changes: Any) -> tuple:
    """The contract's Grant tuple, unchecked by Python: for feeding the contract bad input."""
    t = terms(**changes)
    return (
        changes.get("isccId", ISCC_ID),
        grantor,
        t["licensee"],
        t["parent"],
        t["territories"],
        t["worldwide"],
        t["uses"],
        t["conditions"],
        t["start"],
        t["end"],
        t["exclusive"],
        t["sublicensable"],
        t["termsUrl"],
        t["termsHash"],
        nonce,
        deadline,
    )


def error_name(call: Any, sender: str) -> str:
    """The custom error the call reverts with, by name."""
    with pytest.raises(ContractCustomError) as exc:
        call.call({"from": sender})
    return decode_revert(exc.value.data, contract=LICENCES_NAME).split("(")[0]


def refused(exc: pytest.ExceptionInfo) -> str:
    return str(exc.value).split("rejects it: ")[-1].split("(")[0]


@pytest.fixture
def grantor() -> LocalAccount:
    return dev_account(2)


def _fund(registry: Registry, address: str) -> None:
    registry.w3.provider.make_request("hardhat_setBalance", [address, hex(10**18)])


def _chain_time(registry: Registry) -> int:
    return int(registry.w3.eth.get_block("latest")["timestamp"])


# --- contract rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"uses": 0}, "NoUses"),
        ({"conditions": 8}, "InvalidConditions"),
        ({"territories": b"ATD"}, "InvalidTerritories"),  # odd length
        ({"territories": b"atde"}, "InvalidTerritories"),  # lower case
        ({"territories": b"DEAT"}, "InvalidTerritories"),  # not ascending
        ({"territories": b"DEDE"}, "InvalidTerritories"),  # repeated
        ({"territories": b"A1"}, "InvalidTerritories"),  # not a letter
        ({"territories": b"AA" * 251, "worldwide": True}, "InvalidTerritories"),  # too many
        ({"territories": b""}, "NoTerritory"),
        ({"end": 1_735_689_600}, "InvalidPeriod"),  # end == start
        ({"end": 1_700_000_000}, "InvalidPeriod"),  # end before start
        ({"termsUrl": "x" * 2049}, "TermsUrlTooLong"),
        ({"parent": b"\x01" * 32}, "UnknownParent"),
        ({"isccId": 0}, "InvalidIsccId"),
    ],
)
def test_each_rule_refuses_bad_input_with_its_error(
    registry: Registry, grantor: LocalAccount, changes: dict, error: str
) -> None:
    ledger = registry.licences.functions
    assert error_name(ledger.grant(raw_grant(grantor.address, **changes)), grantor.address) == (
        error
    )
    # The Python model refuses the same grant before anyone signs or pays, naming the same
    # error (the parent's existence only the chain knows).
    if error != "UnknownParent":
        struct = terms(**{k: v for k, v in changes.items() if k != "isccId"})
        with pytest.raises(InvalidGrant, match=error):
            GrantRequest.from_struct(
                struct,
                iscc_id=changes.get("isccId", ISCC_ID),
                grantor=grantor.address,
                nonce=1,
                deadline=2**40,
            )


def test_the_world_with_no_exception_and_250_codes_are_well_formed(
    registry: Registry, grantor: LocalAccount
) -> None:
    """The boundaries of the rules are accepted: worldwide without exclusions, the maximum
    number of codes, an open end, an empty terms URL."""
    codes = b"".join(bytes([a, b]) for a in range(0x41, 0x5B) for b in range(0x41, 0x5B))[:500]
    ledger = registry.licences.functions
    for changes in (
        {"territories": b"", "worldwide": True, "end": 0, "termsUrl": "", "termsHash": ZERO_HASH},
        {"territories": codes, "worldwide": True},
        {"termsUrl": "x" * 2048},
    ):
        ledger.grant(raw_grant(grantor.address, **changes)).call({"from": grantor.address})


def test_a_direct_grant_must_come_from_its_grantor(
    registry: Registry, grantor: LocalAccount
) -> None:
    ledger = registry.licences.functions
    other = dev_account(1)
    assert error_name(ledger.grant(raw_grant(grantor.address)), other.address) == "NotGrantor"


# --- grants on chain ------------------------------------------------------------------------


def test_direct_grant_records_grantor_licensee_and_spends_the_nonce(
    registry: Registry, grantor: LocalAccount
) -> None:
    licensee = Account.create().address
    request = GrantRequest.from_struct(
        terms(licensee=licensee), iscc_id=ISCC_ID, grantor=grantor.address, nonce=7, deadline=0
    )
    receipt = grant_direct(registry, grantor, request)
    assert receipt.grant_id == grant_id_of(grantor.address, 7) == request.grant_id
    assert receipt.licensee == licensee and receipt.grantor == grantor.address
    ledger = registry.licences.functions
    grant_id = bytes.fromhex(receipt.grant_id[2:])
    assert ledger.grantorOf(grant_id).call() == grantor.address
    assert ledger.licenseeOf(grant_id).call() == licensee
    assert ledger.isNonceUsed(grantor.address, 7).call()
    assert not ledger.isNonceUsed(grantor.address, 8).call()
    assert not ledger.isTerminated(grant_id).call()
    assert ledger.grantIdOf(grantor.address, 7).call() == grant_id
    with pytest.raises(InvalidGrant) as exc:
        grant_direct(registry, grantor, request)
    assert refused(exc) == "NonceAlreadyUsed"


def test_a_public_grant_stores_no_licensee(registry: Registry, grantor: LocalAccount) -> None:
    request = GrantRequest.from_struct(
        terms(), iscc_id=ISCC_ID, grantor=grantor.address, nonce=3, deadline=0
    )
    receipt = grant_direct(registry, grantor, request)
    assert receipt.licensee is None
    assert registry.licences.functions.licenseeOf(bytes.fromhex(receipt.grant_id[2:])).call() == (
        ZERO_ADDRESS
    )


def test_signed_grant_is_relayed_by_a_payer(registry: Registry, payer: LocalAccount) -> None:
    key = Account.create()  # no ether: it only signs
    signed = prepare_grant(registry, key, ISCC_ID, terms(exclusive=True))
    signed.verify()
    assert SignedGrant.from_json(signed.to_json()) == signed
    receipt = submit_grant(registry, signed, payer)
    assert receipt.grantor == key.address
    assert receipt.grant_id == signed.request.grant_id
    with pytest.raises(InvalidGrant) as exc:
        submit_grant(registry, signed, payer)
    assert refused(exc) == "NonceAlreadyUsed"


def test_signatures_bind_to_chain_id_and_ledger(
    registry: Registry, payer: LocalAccount, devnet: Any
) -> None:
    """A signature made for another chain, or for another LicenceRegistry on this chain, is
    refused by the contract (InvalidSignature), not only by our own domain check."""
    key = Account.create()
    mine = licence_domain(registry)
    other_ledger = Registry.open(deploy_registry(registry.w3, dev_account(0)))
    ledger = registry.licences.functions
    deadline = _chain_time(registry) + 3600
    for nonce, domain in enumerate(
        (
            LicenceDomain(1, mine.verifying_contract),
            LicenceDomain(mine.chain_id, other_ledger.licences.address),
            LicenceDomain(mine.chain_id, registry.contract.address),  # the registry itself
        )
    ):
        request = GrantRequest.from_struct(
            terms(), iscc_id=ISCC_ID, grantor=key.address, nonce=nonce, deadline=deadline
        )
        signed = sign_grant(request, domain, key)
        call = ledger.grantFor(request.as_tuple(), signed.signature)
        assert error_name(call, payer.address) == "InvalidSignature"
        with pytest.raises(InvalidGrant, match="signed for chain"):
            submit_grant(registry, signed, payer)
    # The same grant signed for this ledger passes.
    request = GrantRequest.from_struct(
        terms(), iscc_id=ISCC_ID, grantor=key.address, nonce=9, deadline=deadline
    )
    assert submit_grant(registry, sign_grant(request, mine, key), payer).grantor == key.address


def test_a_signature_by_another_key_or_for_changed_terms_is_refused(
    registry: Registry, payer: LocalAccount
) -> None:
    key, thief = Account.create(), Account.create()
    signed = prepare_grant(registry, key, ISCC_ID, terms())
    # Every field is signed: widening the territories voids the signature.
    widened = dataclasses.replace(signed.request, territories=b"ATCHDE")
    call = registry.licences.functions.grantFor(widened.as_tuple(), signed.signature)
    assert error_name(call, payer.address) == "InvalidSignature"
    forged = sign_grant(signed.request, signed.domain, thief)
    call = registry.licences.functions.grantFor(forged.request.as_tuple(), forged.signature)
    assert error_name(call, payer.address) == "InvalidSignature"
    with pytest.raises(InvalidGrant, match="not by the grantor"):
        submit_grant(registry, forged, payer)


def test_an_expired_deadline_fails(registry: Registry, payer: LocalAccount) -> None:
    key = Account.create()
    signed = prepare_grant(registry, key, ISCC_ID, terms(), validity_s=-10)
    with pytest.raises(InvalidGrant) as exc:
        submit_grant(registry, signed, payer)
    assert refused(exc) == "DeadlineExpired"


def test_invalidated_nonces_cannot_be_used(registry: Registry, payer: LocalAccount) -> None:
    key = dev_account(2)
    nonce = (5 << 8) | 17
    signed = prepare_grant(registry, key, ISCC_ID, terms(), nonce=nonce)
    registry.transact(
        registry.licences.functions.invalidateNonces(5, 1 << 17), key, contract=LICENCES_NAME
    )
    assert registry.licences.functions.isNonceUsed(key.address, nonce).call()
    with pytest.raises(InvalidGrant) as exc:
        submit_grant(registry, signed, payer)
    assert refused(exc) == "NonceAlreadyUsed"


# --- terminations ---------------------------------------------------------------------------


def _granted(registry: Registry, grantor: LocalAccount, licensee: str, nonce: int) -> str:
    request = GrantRequest.from_struct(
        terms(licensee=licensee), iscc_id=ISCC_ID, grantor=grantor.address, nonce=nonce, deadline=0
    )
    return grant_direct(registry, grantor, request).grant_id


def test_grantor_terminates_once(registry: Registry, grantor: LocalAccount) -> None:
    grant_id = _granted(registry, grantor, Account.create().address, 11)
    receipt = terminate_direct(registry, grantor, grant_id)
    assert (receipt.grant_id, receipt.by) == (grant_id, grantor.address)
    assert registry.licences.functions.isTerminated(bytes.fromhex(grant_id[2:])).call()
    with pytest.raises(InvalidGrant) as exc:
        terminate_direct(registry, grantor, grant_id)
    assert refused(exc) == "AlreadyTerminated"


def test_only_grantor_or_licensee_may_terminate(
    registry: Registry, grantor: LocalAccount, payer: LocalAccount
) -> None:
    licensee = Account.create()
    grant_id = _granted(registry, grantor, licensee.address, 12)
    stranger = dev_account(1)
    with pytest.raises(InvalidGrant) as exc:
        terminate_direct(registry, stranger, grant_id)
    assert refused(exc) == "NotParty"
    with pytest.raises(InvalidGrant) as exc:
        terminate_direct(registry, grantor, "0x" + "ab" * 32)
    assert refused(exc) == "UnknownGrant"
    # A stranger's signature naming the licensee as `by` is no consent of the licensee.
    forged = prepare_termination(registry, stranger, grant_id, by=licensee.address)
    with pytest.raises(InvalidGrant, match="not by"):
        submit_termination(registry, forged, payer)
    call = registry.licences.functions.terminateFor(forged.termination.as_tuple(), forged.signature)
    assert error_name(call, payer.address) == "InvalidSignature"
    # The licensee gives the licence up, relayed; the signature cannot be used again.
    signed = prepare_termination(registry, licensee, grant_id)
    assert submit_termination(registry, signed, payer).by == licensee.address
    with pytest.raises(InvalidGrant) as exc:
        submit_termination(registry, signed, payer)
    assert refused(exc) == "AlreadyTerminated"


def test_nobody_but_the_grantor_terminates_a_public_licence(
    registry: Registry, grantor: LocalAccount, payer: LocalAccount
) -> None:
    grant_id = _granted(registry, grantor, ZERO_ADDRESS, 13)
    call = registry.licences.functions.terminate(bytes.fromhex(grant_id[2:]))
    assert error_name(call, payer.address) == "NotParty"
    termination = Termination(bytes.fromhex(grant_id[2:]), ZERO_ADDRESS, 2**40)
    call = registry.licences.functions.terminateFor(termination.as_tuple(), b"\x00" * 65)
    assert error_name(call, payer.address) == "NotParty"


def test_an_expired_termination_fails(
    registry: Registry, grantor: LocalAccount, payer: LocalAccount
) -> None:
    grant_id = _granted(registry, grantor, ZERO_ADDRESS, 14)
    signed = prepare_termination(registry, grantor, grant_id, validity_s=-10)
    with pytest.raises(InvalidGrant) as exc:
        submit_termination(registry, signed, payer)
    assert refused(exc) == "DeadlineExpired"


def test_a_termination_signed_for_another_ledger_fails(
    registry: Registry, grantor: LocalAccount, payer: LocalAccount
) -> None:
    grant_id = _granted(registry, grantor, ZERO_ADDRESS, 15)
    mine = licence_domain(registry)
    termination = Termination(bytes.fromhex(grant_id[2:]), grantor.address, 2**40)
    signed = sign_termination(termination, LicenceDomain(1, mine.verifying_contract), grantor)
    call = registry.licences.functions.terminateFor(termination.as_tuple(), signed.signature)
    assert error_name(call, payer.address) == "InvalidSignature"


# --- smart wallets and batches --------------------------------------------------------------


def test_a_smart_wallet_grants_with_its_owners_signature(
    registry: Registry, payer: LocalAccount
) -> None:
    owner = Account.create()
    wallet = deploy_mock(registry, "OwnedWallet", owner.address)
    signed = prepare_grant(registry, owner, ISCC_ID, terms(), grantor_address=wallet)
    receipt = submit_grant(registry, signed, payer)
    assert receipt.grantor == wallet
    stranger = Account.create()
    forged = prepare_grant(registry, stranger, ISCC_ID, terms(), grantor_address=wallet)
    with pytest.raises(InvalidGrant) as exc:
        submit_grant(registry, forged, payer)
    assert refused(exc) == "InvalidSignature"


def _set_mode(registry: Registry, wallet: str, mode: int) -> None:
    registry.transact(
        mock_contract(registry, "HostileWallet", wallet).functions.setMode(mode), dev_account(0)
    )


def _send(registry: Registry, call: Any, payer: LocalAccount, gas: int) -> dict:
    """Send with a fixed gas limit; the receipt whether or not it reverted."""
    w3 = registry.w3
    tx = call.build_transaction(
        {
            "from": payer.address,
            "nonce": w3.eth.get_transaction_count(payer.address, "pending"),
            "gas": gas,
        }
    )
    signed = payer.sign_transaction(tx)
    with contextlib.suppress(Web3RPCError):
        w3.eth.send_raw_transaction(signed.raw_transaction)
    return dict(w3.eth.wait_for_transaction_receipt(signed.hash))


@pytest.mark.parametrize("mode", [BURN_GAS, REVERT, SHORT, REJECT])
def test_a_hostile_wallet_in_a_batch_fails_alone(
    registry: Registry, payer: LocalAccount, mode: int
) -> None:
    """The wallet answers validly while the relayer estimates, then turns hostile before the
    transaction is mined: its entry fails with InvalidSignature, the others are granted, and
    the wallet cost the transaction at most its stipend."""
    wallet = deploy_mock(registry, "HostileWallet")
    honest = [Account.create() for _ in range(2)]
    batch = [
        prepare_grant(registry, honest[0], ISCC_ID, terms()),
        prepare_grant(registry, Account.create(), ISCC_ID, terms(), grantor_address=wallet),
        prepare_grant(registry, honest[1], ISCC_ID, terms()),
    ]
    call = registry.licences.functions.grantBatch(
        [(s.request.as_tuple(), s.signature) for s in batch]
    )
    estimate = registry.estimate_gas(call, payer.address, contract=LICENCES_NAME)
    _set_mode(registry, wallet, mode)
    receipt = _send(registry, call, payer, estimate + WALLET_CHECK_GAS)
    assert receipt["status"] == 1
    failed = registry.licences.events.GrantFailed().process_receipt(receipt, errors=DISCARD)
    assert [(e["args"]["index"], e["args"]["grantor"]) for e in failed] == [(1, wallet)]
    reason = decode_revert(failed[0]["args"]["reason"], contract=LICENCES_NAME)
    assert reason.startswith("InvalidSignature")
    granted = registry.licences.events.LicenceGranted().process_receipt(receipt, errors=DISCARD)
    assert [e["args"]["grantor"] for e in granted] == [h.address for h in honest]
    assert receipt["gasUsed"] <= estimate + WALLET_CHECK_GAS


def test_relay_grants_reports_each_entry_and_grants_the_rest(
    registry: Registry, payer: LocalAccount
) -> None:
    """Bad entries (another ledger's signature, a forged EOA signature, a spent nonce, a
    rejecting wallet, a duplicate) are reported; a sublicence naming its parent earlier in the
    same batch is granted with it."""
    wallet = deploy_mock(registry, "HostileWallet")
    _set_mode(registry, wallet, REJECT)
    parent_key, child_key = Account.create(), Account.create()
    parent = prepare_grant(
        registry, parent_key, ISCC_ID, terms(licensee=child_key.address, sublicensable=True)
    )
    child_terms = terms(parent=bytes.fromhex(parent.request.grant_id[2:]), territories=b"AT")
    child = prepare_grant(registry, child_key, ISCC_ID, child_terms)
    spent = prepare_grant(registry, dev_account(2), ISCC_ID, terms())
    submit_grant(registry, spent, payer)
    elsewhere = sign_grant(
        prepare_grant(registry, Account.create(), ISCC_ID, terms()).request,
        LicenceDomain(1, "0x" + "11" * 20),
        Account.create(),
    )
    key = Account.create()
    forged = sign_grant(
        prepare_grant(registry, key, ISCC_ID, terms()).request,
        licence_domain(registry),
        Account.create(),
    )
    hostile = prepare_grant(registry, Account.create(), ISCC_ID, terms(), grantor_address=wallet)
    batch = [parent, elsewhere, forged, spent, hostile, child, parent]
    results = relay_grants(registry, batch, payer)
    assert [r.receipt is not None for r in results] == [
        True, False, False, False, False, True, False,
    ]  # fmt: skip
    assert "another chain" in (results[1].error or "")
    assert "InvalidSignature" in (results[2].error or "")
    assert "NonceAlreadyUsed" in (results[3].error or "")
    assert "InvalidSignature" in (results[4].error or "")
    assert "NonceAlreadyUsed" in (results[6].error or "")
    assert results[5].receipt is not None and results[5].receipt.grant_id == child.request.grant_id


def test_a_batch_short_of_gas_for_a_wallet_check_reverts_whole(
    registry: Registry, payer: LocalAccount
) -> None:
    """Below the wallet floor the contract reverts instead of failing the wallet's entry: a
    relayer's too-low gas limit must never be charged to a signer as a bad signature."""
    owner = Account.create()
    wallet = deploy_mock(registry, "OwnedWallet", owner.address)
    signed = prepare_grant(registry, owner, ISCC_ID, terms(), grantor_address=wallet)
    call = registry.licences.functions.grantBatch([(signed.request.as_tuple(), signed.signature)])
    receipt = _send(registry, call, payer, 90_000)
    assert receipt["status"] == 0
    assert not registry.licences.functions.isNonceUsed(wallet, signed.request.nonce).call()


def test_python_refuses_what_it_cannot_sign() -> None:
    key = Account.create()
    with pytest.raises(InvalidGrant, match="not an address"):
        GrantRequest.from_struct(terms(licensee="bob"), iscc_id=ISCC_ID, grantor=key.address,
                                 nonce=1, deadline=1)  # fmt: skip
    with pytest.raises(InvalidGrant, match="uses"):
        GrantRequest.from_struct(terms(uses=2**32), iscc_id=ISCC_ID, grantor=key.address,
                                 nonce=1, deadline=1)  # fmt: skip
    with pytest.raises(InvalidGrant, match="malformed"):
        SignedGrant.from_json({"grant": {}, "signature": "0x", "domain": {}})
