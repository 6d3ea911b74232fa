"""The replicate adapter's FastAPI app, on the shared service skeleton (engine, NATS,
readiness): the Replicate client, the poller, the command and webhook consumers and the cost
query. HTTP serves only /healthz, /readyz and /metrics (Replicate's webhooks reach the gateway,
which verifies them and hands them over on ``picture.cmd.adapter.webhook``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import httpx
from fastapi import FastAPI

from picture.common import contracts as c
from picture.common.messaging import Route
from picture.common.service import ServiceScope, service_app
from picture.common.settings import Environment
from picture.replicate_adapter import accounts
from picture.replicate_adapter.breaker import CircuitBreaker
from picture.replicate_adapter.handlers import Adapter
from picture.replicate_adapter.poller import Poller
from picture.replicate_adapter.replicate import ReplicateClient, build_http_client
from picture.replicate_adapter.settings import AdapterSettings

SERVICE = "replicate-adapter"


def create_app(settings: AdapterSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """``transport`` replaces the network for the Replicate client (tests)."""

    @asynccontextmanager
    async def run(scope: ServiceScope) -> AsyncIterator[None]:
        app, engine, bus = scope.app, scope.engine, scope.bus
        token = settings.replicate_api_token
        http = build_http_client(
            settings.replicate_base_url,
            token.get_secret_value() if token else "",
            timeout=settings.replicate_timeout_seconds,
            transport=transport,
        )
        # The client and the poller serve the consumers: stopped once the bus has stopped
        # (no new work), the poller before the client.
        scope.after_bus.push_async_callback(http.aclose)
        breaker = CircuitBreaker(
            window_seconds=settings.replicate_breaker_window_seconds,
            min_calls=settings.replicate_breaker_min_calls,
            failure_rate=settings.replicate_breaker_failure_rate,
            open_seconds=settings.replicate_breaker_open_seconds,
            half_open_probes=settings.replicate_breaker_half_open_probes,
        )
        webhooks = bool(settings.replicate_webhook_url)
        client = ReplicateClient(
            http,
            max_concurrency=settings.replicate_max_concurrency,
            breaker=breaker,
            webhook_url=settings.replicate_webhook_url,
        )
        poller = Poller(
            engine,
            bus,
            client,
            # With webhooks, polling is the fallback for lost ones: slower.
            interval=settings.replicate_webhook_poll_interval_seconds
            if webhooks
            else settings.replicate_poll_interval_seconds,
            max_interval=settings.replicate_webhook_poll_max_interval_seconds
            if webhooks
            else settings.replicate_poll_max_interval_seconds,
            backoff=settings.replicate_poll_backoff,
            max_polls_per_second=settings.replicate_poll_max_per_second,
            lease_seconds=settings.replicate_poll_lease_seconds,
            heartbeat_seconds=settings.replicate_poll_heartbeat_seconds,
            takeover_batch=settings.replicate_poll_takeover_batch,
        )
        await poller.start()
        scope.after_bus.push_async_callback(poller.stop)
        adapter = Adapter(
            engine,
            bus,
            client,
            poller,
            create_lease_seconds=settings.replicate_timeout_seconds + 15,
            max_retry_after=settings.replicate_max_retry_after_seconds,
            allow_http_sources=settings.environment is not Environment.PRODUCTION,
        )
        app.state.breaker = breaker
        app.state.adapter = adapter
        await bus.start_declared(
            c.ADAPTER_COMMANDS,
            [Route(c.PREDICT, adapter.predict), Route(c.CANCEL_PREDICTION, adapter.cancel)],
            # A create may take the whole HTTP timeout; leave room for the DB.
            ack_wait_seconds=max(
                c.ADAPTER_COMMANDS.ack_wait_seconds, settings.replicate_timeout_seconds + 30
            ),
            max_deliver=settings.predict_max_deliveries,
            on_poison=adapter.on_poison,
        )
        await bus.start_declared(
            c.ADAPTER_WEBHOOKS,
            [Route(c.REPLICATE_WEBHOOK, adapter.webhook)],
            max_in_flight=256,
            retry_delays=(1.0, 1.0, 2.0, 2.0, 5.0),
        )
        await bus.serve(c.COST_TOTALS, adapter.cost_totals)
        await bus.start_declared(
            c.ADAPTER_ACCOUNTS, [Route(c.ACCOUNT_DELETED, partial(accounts.on_account_deleted, engine))]
        )
        yield

    return service_app(SERVICE, settings, run, title="Picture replicate adapter")
