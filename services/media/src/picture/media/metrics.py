"""Prometheus metrics of the media service (names prefixed ``picture_media_``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DOWNLOADS = Counter(
    "picture_media_downloads_total",
    "Source downloads, by outcome (ok, transient, permanent).",
    ["outcome"],
)
DOWNLOAD_BYTES = Counter(
    "picture_media_download_bytes_total",
    "Bytes received from source downloads.",
)
PROCESSING_SECONDS = Histogram(
    "picture_media_processing_seconds",
    "Time spent decoding, transforming and encoding one image (original and thumbnail).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STORED_BYTES = Counter(
    "picture_media_stored_bytes_total",
    "Bytes written to object storage, by role (original, thumbnail).",
    ["role"],
)
INGESTS = Counter(
    "picture_media_ingests_total",
    "Ingest commands finished, by outcome (stored, transient, permanent).",
    ["outcome"],
)
UPLOADS = Counter(
    "picture_media_uploads_total",
    "User uploads finished, by outcome (stored, refused, rolled_back).",
    ["outcome"],
)
IMPORTS = Counter(
    "picture_media_imports_total",
    "Images of the old product imported (picture-import), by outcome (stored, refused).",
    ["outcome"],
)
SWEPT_OBJECTS = Counter(
    "picture_media_sweep_objects_total",
    "Stored objects older than the sweep's grace period, by outcome: kept (an image points at "
    "their folder), removed (no image does), would_remove (the same, in a dry run).",
    ["outcome"],
)
