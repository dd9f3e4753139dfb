"""Use cases of the ledger: commands, their handler, idempotency and concurrency. No transport here."""
