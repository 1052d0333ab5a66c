"""The store of declarations: tables (schema), their upgrades (migrations), the rows a batch of
events becomes (rows), writes, reads and maintenance of SQLite or PostgreSQL (store), the
conflict queue (queue) and the granular segments of metadata documents (segments).

Nothing is imported here, so a log reader process can use `registry.store.rows` and
`registry.store.int64` without loading SQLAlchemy."""
