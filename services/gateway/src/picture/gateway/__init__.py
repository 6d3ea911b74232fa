"""picture-gateway."""
