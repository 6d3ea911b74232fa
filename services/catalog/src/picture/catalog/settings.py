"""Catalog settings."""

from __future__ import annotations

from picture.common.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    http_port: int = 8084
