"""picture-common."""
