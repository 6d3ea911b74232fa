"""Catalog service: models, images, tags, likes, prompt templates, the public gallery.

Answers the gateway's queries over NATS request/reply and records images when the
orchestrator asks (``picture.cmd.catalog.record_image``), idempotently.
"""
