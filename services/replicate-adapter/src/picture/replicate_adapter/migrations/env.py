from picture.common.migrations import run_env
from picture.replicate_adapter.tables import metadata

run_env(metadata)
