"""Real ITSM logs into the ledger: readers (CSV, XES), column mappings, rows → commands, import."""
