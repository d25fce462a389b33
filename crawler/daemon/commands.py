"""CLI commands of the daemon: run, check, status, reload. (Placeholder; the daemon helper owns this.)"""


def add_daemon_commands(commands) -> None:
    """Register the daemon's subcommands on the `newswatch` parser."""
