"""The ownership domain: the Case aggregate, its events, value objects and rules. No I/O here."""
