from picture.catalog.tables import metadata
from picture.common.migrations import run_env

run_env(metadata)
