"""picture-catalog."""
