"""camera layer (see docs/ARCHITECTURE.md)."""
