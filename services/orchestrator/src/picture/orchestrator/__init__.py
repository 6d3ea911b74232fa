"""picture-orchestrator."""
