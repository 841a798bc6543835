"""One experiment per claim of the study note, each with a verdict computed from its numbers."""
