"""``daemonkit trace``: the scheduler's own events around a ping-pong, beside its measurements."""
