"""Ownership reports computed from the read models (JSON figures and an HTML page with plots)."""
