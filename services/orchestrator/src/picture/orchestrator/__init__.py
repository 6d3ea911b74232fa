"""Orchestrator service: owns every generation from acceptance to exactly one terminal state.

Handlers follow one shape: load (row lock), decide (the pure state machine), persist (status
history, errors, performance) and publish through the transactional outbox, all in one
transaction. Where things are:

- ``state_machine``: the transition table and :func:`~state_machine.decide` (what an event does)
- ``intake``: accepting generations (dedup, insert, group commit)
- ``events``: the other services' events; ``lifecycle``: persisting decisions, cancel
- ``views``: what clients read (view, queue position, ETA, pages, error statistics)
- ``scheduler``: dispatch slots and the sweeper; ``batches``: batches of generations
- ``messages``: the commands and events sent; ``metrics``: the Prometheus metrics
"""
