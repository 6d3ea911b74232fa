from picture.common.migrations import run_env
from picture.orchestrator.tables import metadata

run_env(metadata)
