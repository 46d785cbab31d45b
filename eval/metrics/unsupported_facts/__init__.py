"""The unsupported_facts metric module (loaded by path from eval/scoring.py)."""
