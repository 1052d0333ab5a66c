"""The ledger of claims: conflicts between declarers over the same or similar content, found
from the store's durable queue (conflicts), and the indexer that runs their detection after
every sync (indexer); the licence vocabulary and the meaning of a grant (terms)."""
