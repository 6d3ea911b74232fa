"""picture-media."""
