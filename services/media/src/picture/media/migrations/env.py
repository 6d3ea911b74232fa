from picture.common.migrations import run_env
from picture.media.tables import metadata

run_env(metadata)
