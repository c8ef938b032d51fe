"""Plumbing shared by the five ticketing services.

Settings, database sessions, JWT verification, the error model, metrics, health checks,
structured logs, the internal HTTP client and (in :mod:`ticketing_common.messaging`) the
outbox/inbox messaging live here once, so every service behaves the same way.
"""
