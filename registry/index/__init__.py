"""Following the chain: the registry's logs, read in bounded ranges (follower, log reader
processes), decoded (events) and turned into the store's rows (rows), reorg- and crash-safe."""
