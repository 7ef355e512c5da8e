"""ops layer (see docs/ARCHITECTURE.md)."""
