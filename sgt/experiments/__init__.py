"""Experiment runners that reproduce the paper (they use the library; the library never uses them)."""
