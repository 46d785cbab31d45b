"""The chrf `evaluate` module; a package only so wheels ship chrf.py (load it by path)."""
