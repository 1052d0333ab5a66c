"""The indexer (event follower) and the store of declarations it fills, with exact lookups."""
