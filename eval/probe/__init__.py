"""The bundled forgetting probe (data only; see README.md)."""
