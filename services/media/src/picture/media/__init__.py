"""Media service: downloads generated images, cleans and stores them, serves them signed.

- consumes ``picture.cmd.media.ingest`` (download from an allow-listed host, decode safely,
  strip metadata, encode WebP plus a thumbnail, store, record, announce
  ``picture.evt.media.stored.<generation_id>`` or ``...media.failed...`` with the error kind)
  and ``picture.cmd.media.delete``;
- answers ``picture.q.media.resolve_object`` with a short-lived URL (presigned S3, or this
  service's own signed ``GET /objects/{key}`` for the filesystem backend).

Modules: ``settings``, ``errors`` (the error tree), ``download`` (policy and streaming),
``processing`` (Pillow, run off the event loop), ``storage`` (filesystem and S3 backends),
``signing``, ``tables`` and ``migrations``, ``handlers``, ``queries``, ``routes``, ``app``.
"""
