"""xpnet."""
