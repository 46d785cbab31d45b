"""The token_f1 `evaluate` module; a package only so wheels ship token_f1.py (load it by path)."""
