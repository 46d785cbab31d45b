"""Metric scripts as `evaluate` modules, loaded by path from eval/scoring.py (packages so wheels ship them)."""
