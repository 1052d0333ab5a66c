"""Finding declarations: exact resolving (resolve), the Hamming index over unit values (hamming,
following), similarity search and file matching (similarity) and snippet matching over granular
segments (snippets)."""
