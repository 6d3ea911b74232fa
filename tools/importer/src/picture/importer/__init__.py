"""``picture-import``: moves the old Picture product (Supabase schema and storage buckets) into
the new services, each record through the write path of the service that owns it.

    picture-import --source-db postgresql://... --objects ./buckets [--dry-run] [--report-json r.json]

- profiles, tags, prompt templates: the catalog's import queries;
- generations: the orchestrator's import query (finished as they ended; one left
  "processing" becomes failed with the reason); their images are stored by media
  (``POST /internal/imports``: WebP, thumbnail, blurhash, sha256) and recorded by the catalog
  with their flags, tags and likes;
- ids, owners and timestamps are kept; every write is idempotent by id, so a second run writes
  nothing and a run stopped midway is finished by starting it again.

The services are found like the services find each other: ``PICTURE_NATS_URL``,
``PICTURE_MEDIA_INTERNAL_URL`` and ``PICTURE_MEDIA_INTERNAL_TOKEN`` (or the options).
See :mod:`picture.importer.plan` for how the old data's known defects are repaired.
"""
