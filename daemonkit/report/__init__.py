"""Plots and the HTML report: views of the bench and lessons JSON, never new measurements."""
