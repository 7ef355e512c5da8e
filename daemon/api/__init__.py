"""api layer (see docs/ARCHITECTURE.md)."""
