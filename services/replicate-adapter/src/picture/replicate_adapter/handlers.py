"""The adapter's command handlers: predict and cancel (consumer "adapter-commands"), verified
webhooks (consumer "adapter-webhooks") and the cost totals query.

Predict is idempotent per (generation, attempt):

1. the input is built from the command's model snapshot (a refusal is a permanent failure);
2. the row is written first (status ``creating``, request hash); a row that already has a
   prediction id means a redelivery or a duplicate: "started" is published again (same
   message id) and the prediction is followed, nothing is created;
3. the create request; a transient error is retried by redelivery with a growing delay (a
   create that may have reached Replicate is reconciled before creating again: the listed
   prediction of the same request created while our create was in flight, and no other
   attempt's, see :mod:`.reconcile`); a permanent one is reported; a handler interrupted
   after sending (cancelled at a graceful stop, its message handed back) leaves the create
   uncertain too, so the redelivery reconciles;
4. prediction id and status are stored, "started" is published, the poller follows it.

On the command's last delivery the consumer's poison hook reports a transient failure, so the
orchestrator can retry later instead of waiting forever.
"""

from __future__ import annotations

import contextlib
import logging
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.contracts import (
    PREDICTION_UPDATED,
    CancelPredictionCommand,
    CostTotalsReply,
    CostTotalsRequest,
    CostTotalsRow,
    ErrorInfo,
    ErrorKind,
    PredictCommand,
    PredictionEvent,
    PredictionStatus,
    ReplicateWebhookCommand,
)
from picture.common.messaging import Bus, Delivery, Retry
from picture.replicate_adapter import store
from picture.replicate_adapter.errors import (
    InputError,
    PermanentReplicateError,
    ReplicateError,
    TransientReplicateError,
)
from picture.replicate_adapter.inputs import build_input
from picture.replicate_adapter.metrics import WEBHOOKS
from picture.replicate_adapter.outcomes import (
    CREATE_FAILED,
    EXPIRED,
    REJECTED,
    error_code,
    started_id,
    terminal_event,
    terminal_id,
)
from picture.replicate_adapter.poller import Poller
from picture.replicate_adapter.reconcile import Candidate, Contested, NotFound, Window, choose
from picture.replicate_adapter.replicate import Prediction, ReplicateClient

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 60.0
RECONCILE_SKEW = timedelta(seconds=5)  # our clock against Replicate's
MAX_RETRY_AFTER = 30.0
# A webhook can overtake the create's answer: its row has no prediction id yet.
WEBHOOK_EARLY_DELAY = 1.0


def _same_request(row: store.PredictionRow, prediction: Prediction) -> bool:
    """The listed prediction was made from the request this attempt sends (model and input)."""
    raw = prediction.raw
    if raw.get("model") not in (None, row.replicate_id) or not isinstance(raw.get("input"), dict):
        return False
    version = raw.get("version") if raw.get("version") not in ("", None, "hidden") else None
    sent = raw["input"]
    hashes = {
        store.request_hash(row.replicate_id, None, sent),
        store.request_hash(row.replicate_id, version, sent),
    }
    return row.request_hash in hashes


def retry_delay(
    num_delivered: int,
    retry_after: float | None = None,
    base: float = 1.0,
    max_retry_after: float = MAX_RETRY_AFTER,
) -> float:
    """Exponential backoff with full jitter (uniform in [0, base * 2^(n-1)], capped), but at
    least Replicate's ``retry_after`` (itself capped at ``max_retry_after``)."""
    ceiling = min(MAX_RETRY_DELAY, base * 2 ** max(0, num_delivered - 1))
    delay = random.uniform(0.0, ceiling)
    return max(delay, min(retry_after or 0.0, max_retry_after))


class Adapter:
    """Wires the handlers to their dependencies (built once in the app's lifespan)."""

    def __init__(
        self,
        engine: AsyncEngine,
        bus: Bus,
        client: ReplicateClient,
        poller: Poller,
        *,
        create_lease_seconds: float = 60.0,
        max_retry_after: float = MAX_RETRY_AFTER,
        allow_http_sources: bool = False,
        reconcile_skew: timedelta = RECONCILE_SKEW,
    ) -> None:
        self.reconcile_skew = reconcile_skew
        self.allow_http_sources = allow_http_sources
        self.create_lease_seconds = create_lease_seconds
        self.max_retry_after = max_retry_after
        self.engine = engine
        self.bus = bus
        self.client = client
        self.poller = poller

    # ------------------------------------------------------------------ publishing

    async def _publish_started(self, row: store.PredictionRow) -> None:
        await self.bus.publish(
            PREDICTION_UPDATED,
            PredictionEvent(
                generation_id=row.generation_id,
                attempt=row.attempt,
                prediction_id=row.prediction_id,
                status=PredictionStatus.STARTED,
            ),
            message_id=started_id(row.generation_id, row.attempt),
            generation_id=row.generation_id,
        )

    async def _publish_terminal(self, event: PredictionEvent) -> None:
        await self.bus.publish(
            PREDICTION_UPDATED,
            event,
            message_id=terminal_id(event.generation_id, event.attempt),
            generation_id=event.generation_id,
        )

    async def _republish_terminal(self, row: store.PredictionRow) -> None:
        await self._publish_terminal(
            terminal_event(
                generation_id=row.generation_id,
                attempt=row.attempt,
                prediction_id=row.prediction_id,
                status=row.status,
                output=row.output,
                error=row.error,
                predict_time_seconds=row.predict_time_seconds,
                cost_usd=row.cost_usd,
            )
        )

    async def _fail(self, cmd: PredictCommand, status: str, error: str) -> None:
        """Finish a prediction that never ran (publish, then record)."""
        event = terminal_event(
            generation_id=cmd.generation_id,
            attempt=cmd.attempt,
            prediction_id=None,
            status=status,
            error=error,
        )
        await self._publish_terminal(event)
        await store.finish(
            self.engine,
            cmd.generation_id,
            cmd.attempt,
            status=status,
            error=error,
            error_code=error_code(event),
        )

    async def _follow(self, row: store.PredictionRow) -> None:
        """Poll the prediction here, unless another replica already does."""
        await self.poller.follow(row)

    # ------------------------------------------------------------------ predict

    async def predict(self, delivery: Delivery[PredictCommand]) -> None:
        cmd = delivery.message
        try:
            model_input = build_input(cmd.model, cmd.parameters, allow_http_source=self.allow_http_sources)
        except InputError as exc:
            log.info("generation %s/%d refused: %s", cmd.generation_id, cmd.attempt, exc.message)
            await self._publish_terminal(
                PredictionEvent(
                    generation_id=cmd.generation_id,
                    attempt=cmd.attempt,
                    prediction_id=None,
                    status=PredictionStatus.FAILED,
                    error=ErrorInfo(
                        kind=ErrorKind.PERMANENT,
                        code="invalid_parameters",
                        message=exc.message,
                        details={"field": exc.field},
                    ),
                )
            )
            return

        row = await store.claim(
            self.engine,
            generation_id=cmd.generation_id,
            attempt=cmd.attempt,
            model=cmd.model.name,
            replicate_id=cmd.model.replicate_id,
            input=model_input,
            hash=store.request_hash(cmd.model.replicate_id, cmd.model.version, model_input),
            cost_usd=cmd.model.cost_per_generation,
            user_id=cmd.user_id,
        )
        if row.prediction_id is not None:
            # Redelivery or duplicate: never create a second prediction.
            await self._publish_started(row)
            if row.terminal:
                await self._republish_terminal(row)
            else:
                await self._follow(row)
                if row.cancel_requested:
                    await self._cancel_at_replicate(row)
            return
        if row.terminal:  # finished without a prediction (canceled first, refused, ...)
            await self._republish_terminal(row)
            return

        leased = await store.lease(self.engine, cmd.generation_id, cmd.attempt, self.create_lease_seconds)
        if leased is None:
            # A duplicate is creating it right now (or just did): look again shortly.
            raise Retry("another delivery is creating this prediction", 1.0)
        try:
            prediction = None
            if leased.status == store.CREATE_UNCERTAIN:
                prediction = await self._reconcile(leased, delivery.num_delivered)
            if prediction is None:
                cancel_after = None
                if cmd.deadline is not None:
                    cancel_after = (cmd.deadline - datetime.now(UTC)).total_seconds()
                    if cancel_after <= 0:
                        await self._fail(cmd, EXPIRED, "The deadline passed before creation")
                        return
                prediction = await self._create(delivery, model_input, cancel_after)
                if prediction is None:
                    return
            row = await store.set_created(
                self.engine, cmd.generation_id, cmd.attempt, prediction.id, prediction.status
            )
        except Retry:
            # The create's outcome is known (or already marked uncertain): try again later.
            await store.release(self.engine, cmd.generation_id, cmd.attempt)
            raise
        except BaseException:
            # Interrupted (a graceful stop hands the message back at once): a create sent may
            # have made a prediction whose id we did not record; the next delivery reconciles
            # before creating, so a handed-back create never makes a second prediction.
            with contextlib.suppress(Exception):
                await store.interrupted(self.engine, cmd.generation_id, cmd.attempt)
            raise

        log.info(
            "generation %s/%d: prediction %s created (%s)",
            cmd.generation_id,
            cmd.attempt,
            prediction.id,
            cmd.model.name,
        )
        await self._publish_started(row)
        await self._follow(row)
        if row.cancel_requested:
            await self._cancel_at_replicate(row)

    async def _create(
        self,
        delivery: Delivery[PredictCommand],
        model_input: dict[str, Any],
        cancel_after: float | None,
    ) -> Prediction | None:
        cmd = delivery.message
        await store.create_sending(self.engine, cmd.generation_id, cmd.attempt)
        try:
            return await self.client.create_prediction(
                cmd.model,
                model_input,
                cancel_after_seconds=cancel_after,
                webhook_marker={"generation_id": str(cmd.generation_id), "attempt": str(cmd.attempt)},
            )
        except TransientReplicateError as exc:
            if exc.maybe_created:
                await store.set_status(self.engine, cmd.generation_id, cmd.attempt, store.CREATE_UNCERTAIN)
            await store.create_settled(self.engine, cmd.generation_id, cmd.attempt)
            delay = retry_delay(delivery.num_delivered, exc.retry_after, max_retry_after=self.max_retry_after)
            raise Retry(f"create failed: {exc.message}", delay) from exc
        except PermanentReplicateError as exc:
            await store.create_settled(self.engine, cmd.generation_id, cmd.attempt)
            log.warning(
                "generation %s/%d: Replicate refused the prediction: %s",
                cmd.generation_id,
                cmd.attempt,
                exc.message,
            )
            await self._fail(cmd, REJECTED, exc.message)
            return None

    async def _reconcile(self, row: store.PredictionRow, num_delivered: int) -> Prediction | None:
        """After a create that may have reached Replicate: our prediction among those listed
        since our first create was sent (same model and request, created while one of our
        creates was in flight, not another attempt's; see :mod:`.reconcile`). None: nothing
        was created, creating is safe."""
        own = Window(row.create_sent_at or row.created_at, row.create_settled_at)
        since = own.start - self.reconcile_skew
        found: dict[str, Prediction] = {}
        candidates: list[Candidate] = []
        try:
            async for prediction in self.client.list_predictions(created_after=since):
                created = prediction.created_at
                if created is None:
                    continue
                if created < since:
                    break  # newest first: the rest is older than our attempt
                if _same_request(row, prediction):
                    found[prediction.id] = prediction
                    candidates.append(Candidate(prediction.id, created))
        except ReplicateError as exc:
            raise Retry(f"reconciling an uncertain create failed: {exc.message}", 2.0) from exc
        claimed = await store.claimed(self.engine, list(found))
        rivals = [
            Window(r.create_sent_at or r.created_at, r.create_settled_at)
            for r in await store.open_creates(self.engine, row)
        ]
        decision = choose(own, candidates, claimed, rivals, self.reconcile_skew)
        if isinstance(decision, NotFound):
            return None
        if isinstance(decision, Contested):
            # Growing waits: the other attempt's create may take its whole timeout to settle.
            raise Retry(
                f"predictions {', '.join(decision.prediction_ids)} may be another attempt's",
                max(2.0, retry_delay(num_delivered)),
            )
        for extra in decision.extra:  # ours too: a create that went through twice
            log.warning(
                "generation %s/%d: canceling duplicate prediction %s", row.generation_id, row.attempt, extra
            )
            try:
                await self.client.cancel_prediction(extra, model=row.model)
            except ReplicateError as exc:
                log.warning("cancel of duplicate %s failed: %s", extra, exc.message)
        log.info("reconciled uncertain create of %s: %s", row.generation_id, decision.prediction_id)
        return found[decision.prediction_id]

    async def on_poison(self, delivery: Delivery[Any], exc: BaseException) -> None:
        """Last delivery failed: a predict without a prediction is reported as failed
        (transient) instead of being dropped silently."""
        cmd = delivery.message
        if not isinstance(cmd, PredictCommand):
            return
        row = await store.get(self.engine, cmd.generation_id, cmd.attempt)
        if row is not None and (row.prediction_id is not None or row.terminal):
            return
        reason = exc.args[0] if isinstance(exc, Retry) and exc.args else str(exc)
        await self._fail(cmd, CREATE_FAILED, f"Replicate could not be reached after retries ({reason})")

    # ------------------------------------------------------------------ webhooks

    async def webhook(self, delivery: Delivery[ReplicateWebhookCommand]) -> None:
        """A verified webhook: a terminal status finishes the prediction (as a poll would),
        "starting"/"processing" is recorded. Unknown predictions are ignored (another
        deployment's, or long finished)."""
        cmd = delivery.message
        try:
            prediction = Prediction.from_json(cmd.prediction)
        except TransientReplicateError:
            WEBHOOKS.labels("invalid").inc()
            log.warning("webhook %s carries no prediction object", cmd.webhook_id)
            return
        row = await store.by_prediction_id(self.engine, prediction.id)
        if row is None and cmd.generation_id is not None and cmd.attempt is not None:
            row = await self._webhook_of_attempt(cmd.generation_id, cmd.attempt, prediction)
            if row is None:
                return
        if row is None:
            if delivery.num_delivered < 5:
                # The create's answer may not be stored yet: look again shortly.
                raise Retry(f"webhook for unknown prediction {prediction.id}", WEBHOOK_EARLY_DELAY)
            WEBHOOKS.labels("unknown").inc()
            log.info("webhook %s for unknown prediction %s ignored", cmd.webhook_id, prediction.id)
            return
        if row.terminal:
            WEBHOOKS.labels("stale").inc()
            return
        if prediction.is_terminal:
            WEBHOOKS.labels("terminal").inc()
            await self.poller.complete(row, prediction, "webhook")
        else:
            WEBHOOKS.labels("update").inc()
            await self.poller.update(row, prediction.status)

    async def _webhook_of_attempt(
        self, generation_id: uuid.UUID, attempt: int, prediction: Prediction
    ) -> store.PredictionRow | None:
        """A webhook whose URL names our attempt, for a prediction the attempt has not recorded:
        the answer of its create was lost (or is late), so adopt it; if the attempt already has
        another prediction (or finished without one), this one is an extra of ours: cancel it.
        None: handled here."""
        row = await store.adopt(self.engine, generation_id, attempt, prediction.id, prediction.status)
        if row is not None:
            log.info(
                "generation %s/%d: prediction %s adopted from its webhook",
                generation_id,
                attempt,
                prediction.id,
            )
            WEBHOOKS.labels("adopted").inc()
            await self._publish_started(row)
            await self._follow(row)
            return row
        current = await store.get(self.engine, generation_id, attempt)
        if current is not None and current.prediction_id != prediction.id and not prediction.is_terminal:
            log.warning(
                "generation %s/%d: canceling duplicate prediction %s", generation_id, attempt, prediction.id
            )
            try:
                await self.client.cancel_prediction(prediction.id, model=current.model)
            except PermanentReplicateError as exc:
                log.warning("cancel of duplicate %s refused: %s", prediction.id, exc.message)
            except TransientReplicateError as exc:
                raise Retry(f"cancel of duplicate failed: {exc.message}", exc.retry_after) from exc
        return None

    # ------------------------------------------------------------------ cost

    async def cost_totals(self, request: CostTotalsRequest) -> CostTotalsReply:
        totals = await store.cost_totals(self.engine, days=request.days, user_id=request.user_id)
        rows = tuple(
            CostTotalsRow(
                day=t.day.isoformat(),
                model=t.model,
                user_id=t.user_id,
                predictions=t.predictions,
                cost_usd=t.cost_usd,
            )
            for t in totals
        )
        return CostTotalsReply(rows=rows, total_usd=round(sum(r.cost_usd for r in rows), 6))

    # ------------------------------------------------------------------ cancel

    async def cancel(self, delivery: Delivery[CancelPredictionCommand]) -> None:
        cmd = delivery.message
        row = await store.request_cancel(self.engine, cmd.generation_id, cmd.attempt)
        if row.prediction_id is None:
            if row.terminal and row.status == "canceled":
                # Canceled before any prediction existed: report it now.
                await self._republish_terminal(row)
            # else: a create is in flight; its handler sees cancel_requested.
            return
        if row.terminal:
            return
        await self._cancel_at_replicate(row)

    async def _cancel_at_replicate(self, row: store.PredictionRow) -> None:
        assert row.prediction_id is not None
        try:
            await self.client.cancel_prediction(row.prediction_id, model=row.model)
        except TransientReplicateError as exc:
            raise Retry(f"cancel failed: {exc.message}", exc.retry_after) from exc
        except PermanentReplicateError as exc:
            log.warning("cancel of %s refused: %s", row.prediction_id, exc.message)
        await self._follow(row)
        self.poller.poll_soon(row.generation_id, row.attempt)
