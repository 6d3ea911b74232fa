"""picture-devstack."""
