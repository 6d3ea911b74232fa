"""Shared contracts and plumbing of the Picture services.

Services import from here and never from each other. Modules:

- ``contracts``: every NATS subject, stream and message schema, declared once (a package, one
  module per owning service, everything re-exported).
- ``ids``: UUIDv7 identifiers (time ordered; used as message ids and row ids).
- ``settings``: the pydantic-settings base class every service extends.
- ``messaging``: a thin JetStream layer (durable pull consumers, publish with Nats-Msg-Id,
  request/reply queries with typed errors).
- ``database``: async SQLAlchemy engine construction, one schema per service.
- ``migrations``: alembic run as a separate step, per service schema.
- ``problems``: RFC 9457 problem details.
- ``observability``: structured logging, /healthz /readyz /metrics, trace propagation.
- ``service``: the uvicorn + lifespan runner every service uses.
"""
