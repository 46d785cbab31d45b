"""The answer_match metric module (loaded by path from eval/scoring.py)."""
