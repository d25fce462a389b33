"""Alerts: the query language, the matcher, subscriptions, the outbox and its notifiers."""
