"""Defaults that code reads without loading the settings (pydantic): the CLI's help texts and
the indexer. registry.config builds the settings on them."""

from __future__ import annotations

# A catch-up expected to store at least this many events drops the store's lookup indexes until it
# reaches its target (registry.index.follower), if the store holds fewer declarations than that
# already: building the indexes again takes time in proportion to every row, not just the new ones.
DEFER_LOOKUPS_AFTER = 50_000

# Days a party has to answer a licence case before it expires (registry.ledger.cases).
CASE_RESPONSE_DAYS = 14
# Open cases of one kind per work that may accuse unaccountable parties
# (registry.ledger.case_policy).
CASES_PER_WORK = 10
