"""The bleu `evaluate` module; a package only so wheels ship bleu.py (load it by path)."""
