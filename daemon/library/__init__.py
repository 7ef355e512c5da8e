"""library layer (see docs/ARCHITECTURE.md)."""
