"""Orchestrator service: owns every generation from acceptance to exactly one terminal state.

Handlers follow one shape: load (row lock), apply (pure state machine), persist (status history,
errors, performance) and publish through the transactional outbox, all in one transaction.
"""
