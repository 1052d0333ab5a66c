"""IsccRegistry on a real Hardhat node: every revert path, replay protection, ISCC-ID minting."""

from __future__ import annotations

import dataclasses

import iscc_lib
import pytest
from chain_helpers import deploy_mock, prepare_for, revert_name, sum_code
from eth_account.signers.local import LocalAccount

from registry.chain.contract import Registry
from registry.chain.declaration import Declaration, Domain, sign
from registry.chain.devnet import deploy_registry, dev_account
from registry.chain.iscc_id import IsccId
from registry.chain.submit import declare_direct, domain_of, prepare, submit_signed
from registry.errors import InvalidDeclaration, RegistryError
from registry.iscc.codec import code_to_bytes

pytestmark = pytest.mark.chain

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture
def content() -> dict:
    """ISCC-CODE and datahash of some bytes, computed by iscc-lib."""
    return sum_code(b"hello registry" * 50)


def test_declare_for_mints_decodable_iscc_id(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, content: dict
) -> None:
    signed = prepare(
        registry, declarer, content["iscc"], content["datahash"], gateway="https://x.y/{iscc_id}"
    )
    receipt = submit_signed(registry, signed, payer)
    assert receipt.declarer == declarer.address
    maintype, subtype, version, _, body = iscc_lib.iscc_decode(
        str(receipt.iscc_id).removeprefix("ISCC:")
    )
    assert (maintype, subtype, version) == (iscc_lib.MT.ID, 0, iscc_lib.VS.V1)
    assert int.from_bytes(body, "big") == receipt.iscc_id.body
    block = registry.w3.eth.get_block(receipt.block_number)
    # The ID's timestamp is the block's time in microseconds (or just after the previous ID).
    assert receipt.iscc_id.timestamp_us >= block["timestamp"] * 1_000_000
    assert receipt.iscc_id.timestamp_us < (block["timestamp"] + 1) * 1_000_000
    assert receipt.iscc_id.hub_id == registry.deployment.hub_id
    assert registry.contract.functions.isNonceUsed(
        declarer.address, signed.declaration.nonce
    ).call()


def test_direct_declare_makes_sender_the_declarer(
    registry: Registry, payer: LocalAccount, content: dict
) -> None:
    receipt = declare_direct(registry, payer, content["iscc"], content["datahash"])
    assert receipt.declarer == payer.address


def test_ids_unique_and_increasing_within_one_block(
    registry: Registry, payer: LocalAccount
) -> None:
    w3 = registry.w3
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        nonce = w3.eth.get_transaction_count(payer.address, "pending")
        hashes = []
        for i in range(5):
            c = sum_code(b"same block %d" % i)
            d = Declaration.create(
                payer.address, c["iscc"], c["datahash"], None, "", nonce=0, deadline=0
            )
            tx = registry.contract.functions.declare(
                d.iscc_code, d.datahash, d.metahash, ""
            ).build_transaction(
                {
                    "from": payer.address,
                    "nonce": nonce + i,
                    "gas": 200_000,
                    "chainId": w3.eth.chain_id,
                }
            )
            hashes.append(w3.eth.send_raw_transaction(payer.sign_transaction(tx).raw_transaction))
        w3.provider.make_request("evm_mine", [])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    receipts = [w3.eth.wait_for_transaction_receipt(h) for h in hashes]
    assert len({r["blockNumber"] for r in receipts}) == 1
    ids = [
        registry.contract.events.Declared().process_receipt(r)[0]["args"]["isccId"]
        for r in receipts
    ]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_replayed_signature_is_rejected(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, content: dict
) -> None:
    signed = prepare(registry, declarer, content["iscc"], content["datahash"])
    submit_signed(registry, signed, payer)
    with pytest.raises(InvalidDeclaration) as exc:
        submit_signed(registry, signed, payer)
    assert revert_name(exc) == "NonceAlreadyUsed"


def test_invalidated_nonce_cannot_be_used(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, content: dict
) -> None:
    signed = prepare(registry, declarer, content["iscc"], content["datahash"])
    nonce = signed.declaration.nonce
    # The declarer needs gas for this one call of their own.
    registry.w3.provider.make_request("hardhat_setBalance", [declarer.address, hex(10**18)])
    registry.transact(
        registry.contract.functions.invalidateNonces(nonce >> 8, 1 << (nonce & 255)), declarer
    )
    with pytest.raises(InvalidDeclaration) as exc:
        submit_signed(registry, signed, payer)
    assert revert_name(exc) == "NonceAlreadyUsed"


@pytest.mark.parametrize(
    "field, value",
    [
        ("datahash", b"\x01" * 32),
        ("metahash", b"\x02" * 32),
        ("gateway", "https://evil.example/"),
        ("nonce", 999),
        ("deadline", 2**40),
    ],
)
def test_tampered_field_is_rejected(
    registry: Registry,
    declarer: LocalAccount,
    payer: LocalAccount,
    content: dict,
    field: str,
    value: object,
) -> None:
    signed = prepare(registry, declarer, content["iscc"], content["datahash"])
    tampered = dataclasses.replace(
        signed, declaration=dataclasses.replace(signed.declaration, **{field: value})
    )
    with pytest.raises(InvalidDeclaration) as exc:
        submit_signed(registry, tampered, payer)
    assert revert_name(exc) == "InvalidSignature"
    with pytest.raises(InvalidDeclaration):
        tampered.verify()


def test_tampered_iscc_code_is_rejected(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, content: dict
) -> None:
    signed = prepare(registry, declarer, content["iscc"], content["datahash"])
    other = code_to_bytes(sum_code(b"other content")["iscc"])
    tampered = dataclasses.replace(
        signed, declaration=dataclasses.replace(signed.declaration, iscc_code=other)
    )
    with pytest.raises(InvalidDeclaration) as exc:
        submit_signed(registry, tampered, payer)
    assert revert_name(exc) == "InvalidSignature"


def test_signature_of_another_key_is_rejected(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, content: dict
) -> None:
    signed = prepare(registry, declarer, content["iscc"], content["datahash"])
    impostor = dataclasses.replace(
        signed, declaration=dataclasses.replace(signed.declaration, declarer=dev_account(2).address)
    )
    with pytest.raises(InvalidDeclaration) as exc:
        submit_signed(registry, impostor, payer)
    assert revert_name(exc) == "InvalidSignature"


def _submit_raw(
    registry: Registry,
    declaration: Declaration,
    signature: bytes,
    payer: LocalAccount,
):
    call = registry.contract.functions.declareFor(declaration.as_tuple(), signature)
    return registry.transact(call, payer)


def test_signature_for_another_chain_id_is_rejected(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, content: dict
) -> None:
    good = prepare(registry, declarer, content["iscc"], content["datahash"])
    foreign = sign(good.declaration, Domain(1, registry.deployment.address), declarer)
    with pytest.raises(InvalidDeclaration) as exc:
        _submit_raw(registry, foreign.declaration, foreign.signature, payer)
    assert revert_name(exc) == "InvalidSignature"
    # The client refuses before spending gas, too.
    with pytest.raises(InvalidDeclaration, match="signed for chain 1"):
        submit_signed(registry, foreign, payer)


def test_signature_for_another_contract_is_rejected(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, content: dict
) -> None:
    other = Registry.open(deploy_registry(registry.w3, dev_account(0)))
    signed_for_other = prepare(other, declarer, content["iscc"], content["datahash"])
    with pytest.raises(InvalidDeclaration) as exc:
        _submit_raw(
            registry,
            signed_for_other.declaration,
            signed_for_other.signature,
            payer,
        )
    assert revert_name(exc) == "InvalidSignature"
    # ...while it is valid on the registry it was signed for.
    submit_signed(other, signed_for_other, payer)


def test_malleable_high_s_signature_is_rejected(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, content: dict
) -> None:
    signed = prepare(registry, declarer, content["iscc"], content["datahash"])
    r, s, v = (
        signed.signature[:32],
        int.from_bytes(signed.signature[32:64], "big"),
        signed.signature[64],
    )
    flipped = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    with pytest.raises(InvalidDeclaration) as exc:
        _submit_raw(registry, signed.declaration, flipped, payer)
    assert revert_name(exc) == "InvalidSignature"
    submit_signed(registry, signed, payer)  # the canonical signature still works


def test_expired_deadline_is_rejected(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, content: dict
) -> None:
    d = Declaration.create(
        declarer.address, content["iscc"], content["datahash"], None, "", nonce=0, deadline=1
    )
    signed = sign(d, domain_of(registry), declarer)
    with pytest.raises(InvalidDeclaration) as exc:
        submit_signed(registry, signed, payer)
    assert revert_name(exc) == "DeadlineExpired"


def _bad_inputs(content: dict) -> list[tuple[str, dict]]:
    code = code_to_bytes(content["iscc"])
    meta = code_to_bytes(iscc_lib.gen_meta_code_v0("Title")["iscc"])
    return [
        ("InvalidIsccCode", {"iscc_code": code[:17]}),
        ("InvalidIsccCode", {"iscc_code": code[:2] + bytes(41)}),
        ("InvalidIsccCode", {"iscc_code": meta + bytes(10)}),  # a Meta-Code, not an ISCC-CODE
        ("InvalidDatahash", {"datahash": bytes(32)}),
        ("GatewayTooLong", {"gateway": "x" * 1025}),
    ]


@pytest.mark.parametrize("case", range(5))
def test_invalid_content_is_rejected_signed_and_direct(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, content: dict, case: int
) -> None:
    error, change = _bad_inputs(content)[case]
    base = prepare(registry, declarer, content["iscc"], content["datahash"]).declaration
    bad = dataclasses.replace(base, **change)
    signed = sign(bad, domain_of(registry), declarer)
    with pytest.raises(InvalidDeclaration) as exc:
        submit_signed(registry, signed, payer)
    assert revert_name(exc) == error
    call = registry.contract.functions.declare(
        bad.iscc_code, bad.datahash, bad.metahash, bad.gateway
    )
    with pytest.raises(InvalidDeclaration) as exc:
        registry.transact(call, payer)
    assert revert_name(exc) == error


def test_gateway_at_the_length_limit_is_accepted(
    registry: Registry, payer: LocalAccount, content: dict
) -> None:
    receipt = declare_direct(
        registry, payer, content["iscc"], content["datahash"], gateway="g" * 1024
    )
    assert receipt.gas_used > 0


@pytest.mark.parametrize("realm, hub", [(2, 0), (0, 4096)])
def test_constructor_rejects_bad_realm_or_hub(registry: Registry, realm: int, hub: int) -> None:
    with pytest.raises(RegistryError, match=rf"InvalidHub\(realm={realm}, hubId={hub}\)"):
        deploy_registry(registry.w3, dev_account(0), realm=realm, hub_id=hub)


def test_production_realm_and_hub_id_appear_in_the_iscc_id(
    registry: Registry, payer: LocalAccount, content: dict
) -> None:
    prod = Registry.open(deploy_registry(registry.w3, dev_account(0), realm=1, hub_id=4095))
    receipt = declare_direct(prod, payer, content["iscc"], content["datahash"])
    parsed = IsccId.parse(str(receipt.iscc_id))
    assert (parsed.realm, parsed.hub_id) == (1, 4095)
    assert iscc_lib.iscc_decode(str(receipt.iscc_id)[5:])[1] == 1


def test_smart_wallet_declares_through_erc1271(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, content: dict
) -> None:
    wallet = deploy_mock(registry, "OwnedWallet", declarer.address)
    # The wallet is the declarer; its owner key produced the signature the wallet vouches for.
    as_wallet = prepare_for(registry, declarer, wallet, content)
    receipt = submit_signed(registry, as_wallet, payer)
    assert receipt.declarer == wallet
    stranger = dev_account(2)
    forged = sign(
        dataclasses.replace(as_wallet.declaration, nonce=as_wallet.declaration.nonce + 1),
        domain_of(registry),
        stranger,
    )
    with pytest.raises(InvalidDeclaration) as exc:
        submit_signed(registry, forged, payer)
    assert revert_name(exc) == "InvalidSignature"
