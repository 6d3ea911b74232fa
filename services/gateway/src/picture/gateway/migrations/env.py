from picture.common.migrations import run_env
from picture.gateway.tables import metadata

run_env(metadata)
