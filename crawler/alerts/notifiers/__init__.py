"""Notification channels: webhook, e-mail, Apprise URLs, JSONL file."""
