"""Streaming stage: topic, stream, function and table, run by AWS (or the local cloud)."""
