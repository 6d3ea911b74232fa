"""picture-replicate-adapter."""
