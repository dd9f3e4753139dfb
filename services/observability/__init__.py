"""Traces, metrics and logs: how SREs see the ledger and its projectors from outside."""
