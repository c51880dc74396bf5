"""Completeness beyond the capped lists: the webhook receiver, the inbox it appends to, id import.

The inbox (SQLite, WAL) is deliberately not the sync's DuckDB work file: the receiver must keep
accepting events while a sync holds that file exclusively.
"""
