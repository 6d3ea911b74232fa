"""Gateway service: the only door. Authentication, limits, validation, the public REST API.

It owns no generation state: it asks the orchestrator and the catalog over NATS.
"""
