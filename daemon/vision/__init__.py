"""vision layer (see docs/ARCHITECTURE.md)."""
