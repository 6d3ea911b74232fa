"""The catalog-backed API, one module per resource, served in this order (routes match in it,
and the OpenAPI document lists them in it): the own gallery, likes, explore, tags, prompt
templates, the administrators' model edits."""

from __future__ import annotations

from fastapi import APIRouter

from picture.gateway.routes import explore, gallery, likes, models, tags, templates

router = APIRouter()
for resource in (
    gallery.router,
    likes.router,
    explore.router,
    tags.router,
    templates.router,
    models.admin_router,
):
    router.include_router(resource)
