"""The daemonizer: daemon(7)'s SysV steps, the pidfile, sd_notify and the python-daemon backend."""
