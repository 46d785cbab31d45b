"""The exact_match `evaluate` module; a package only so wheels ship exact_match.py (load it by path)."""
