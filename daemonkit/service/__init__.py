"""The demo daemon: a control socket speaking newline-delimited JSON, plus IPC echo endpoints."""
