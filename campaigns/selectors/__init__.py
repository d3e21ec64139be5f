"""Reads, a module per subject. No writes here, except filling a cache on a miss (progress)."""
