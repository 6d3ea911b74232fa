"""picture-replicate-simulator."""
