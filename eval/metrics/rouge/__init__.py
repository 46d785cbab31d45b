"""The rouge `evaluate` module; a package only so wheels ship rouge.py (load it by path)."""
