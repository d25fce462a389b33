"""The scheduler process (`newswatch run`): schedules, the scheduled crawls, health."""
