"""Property tests against the real node: the nonce lanes behave as a bitmap, and ISCC-IDs stay
unique and increasing whatever the mix of transactions and batches per block."""

from __future__ import annotations

import itertools

import pytest
from chain_helpers import sum_code
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.logs import DISCARD

from registry.chain.contract import Registry
from registry.chain.relayer import entry
from registry.chain.submit import prepare

pytestmark = pytest.mark.chain

FUZZ = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Nonces near lane and word boundaries, plus far-off ones a wallet might pick at random.
nonces = st.one_of(st.integers(0, 520), st.integers(2**255, 2**255 + 8), st.just(2**256 - 1))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("declare"), nonces),
        st.tuples(st.just("invalidate"), st.integers(0, 2), st.integers(1, 2**256 - 1)),
    ),
    min_size=1,
    max_size=5,
)


@FUZZ
@given(ops=operations)
def test_nonce_lanes_behave_as_a_bitmap(registry: Registry, payer, ops: list[tuple]) -> None:
    who = Account.create()
    registry.w3.provider.make_request("hardhat_setBalance", [who.address, hex(10**18)])
    functions = registry.contract.functions
    used: set[int] = set()
    c = sum_code(b"fuzzed nonces")
    for op in ops:
        if op[0] == "declare":
            nonce = op[1]
            signed = prepare(registry, who, c["iscc"], c["datahash"], nonce=nonce)
            call = functions.declareBatch([entry(signed)])
            receipt = registry.transact(call, payer)
            failed = registry.contract.events.DeclarationFailed().process_receipt(
                receipt, errors=DISCARD
            )
            assert bool(failed) == (nonce in used)
            used.add(nonce)
        else:
            _, word, mask = op
            registry.transact(functions.invalidateNonces(word, mask), who)
            used |= {word * 256 + i for i in range(256) if mask >> i & 1}
    words = {n >> 8 for n in used} | {0, 1, 2}
    for word in words:
        expected = sum(1 << (n & 255) for n in used if n >> 8 == word)
        assert functions.nonceBitmap(who.address, word).call() == expected
    for nonce in itertools.islice(sorted(used), 20):
        assert functions.isNonceUsed(who.address, nonce).call()


@FUZZ
@given(blocks=st.lists(st.lists(st.integers(1, 4), min_size=1, max_size=3), min_size=1, max_size=3))
def test_iscc_ids_unique_and_increasing_across_blocks_and_batches(
    registry: Registry, payer, blocks: list[list[int]]
) -> None:
    w3 = registry.w3
    counter = itertools.count()
    mined = []
    for block in blocks:
        w3.provider.make_request("evm_setAutomine", [False])
        try:
            nonce = w3.eth.get_transaction_count(payer.address, "pending")
            hashes = []
            for k, size in enumerate(block):
                batch = []
                for _ in range(size):
                    c = sum_code(b"fuzzed id %d" % next(counter))
                    batch.append(prepare(registry, Account.create(), c["iscc"], c["datahash"]))
                tx = registry.contract.functions.declareBatch(
                    [entry(s) for s in batch]
                ).build_transaction({"from": payer.address, "nonce": nonce + k, "gas": 2_000_000})
                hashes.append(
                    w3.eth.send_raw_transaction(payer.sign_transaction(tx).raw_transaction)
                )
            w3.provider.make_request("evm_mine", [])
        finally:
            w3.provider.make_request("evm_setAutomine", [True])
        mined += [w3.eth.wait_for_transaction_receipt(h) for h in hashes]
    ids = []
    for receipt in sorted(mined, key=lambda r: (r["blockNumber"], r["transactionIndex"])):
        stamp = w3.eth.get_block(receipt["blockNumber"])["timestamp"] * 1_000_000
        for event in registry.contract.events.Declared().process_receipt(receipt, errors=DISCARD):
            body = event["args"]["isccId"]
            assert body >> 12 >= stamp and body & 0xFFF == registry.deployment.hub_id
            ids.append(body)
    assert len(ids) == sum(map(sum, blocks))
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
