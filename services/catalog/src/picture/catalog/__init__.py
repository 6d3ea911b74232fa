"""Catalog service: models, images, tags, likes, profiles, prompt templates, the public gallery.

Answers the gateway's queries over NATS request/reply and records images when the
orchestrator asks (``picture.cmd.catalog.record_image``), idempotently. Each query is one
function ``(engine, request) -> reply`` and each command one ``(engine, command)``; where they
are:

- ``images``: the image record (its one insert, its views), one image's reads and changes,
  bulk actions, upload records, the record_image and download-count commands
- ``gallery``: pages of images: the owner's gallery (filters) and explore (search, popular)
- ``tags``: shared tag names, tagging an image; ``likes``: liking an image
- ``profiles``: one per user; ``templates``: prompt templates and their use counts
- ``models``: model records and administrators' edits; ``seed``: the seeded records
- ``cursors``: keyset cursors of every page
"""
