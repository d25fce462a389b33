"""Deduplication: URL canonicalisation, content fingerprints, near-duplicate stories."""
