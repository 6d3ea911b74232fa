"""/metrics speaks OpenMetrics to a scraper that asks for it, and HTTP latency observations
carry the request's trace id as exemplar."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from picture.common.observability import HttpMetricsMiddleware, carrier_exemplar, ops_router

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
OPENMETRICS_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def _app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(HttpMetricsMiddleware, service="exemplar-test")
    app.include_router(ops_router({}))

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    return app


async def test_latency_exemplars_carry_the_trace_id_in_openmetrics_only() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
        assert (await client.get("/v1/things/7", headers={"traceparent": traceparent})).status_code == 200

        openmetrics = await client.get("/metrics", headers={"Accept": OPENMETRICS_ACCEPT})
        plain = await client.get("/metrics")

    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert plain.headers["content-type"].startswith("text/plain")
    assert "# {" not in plain.text  # the classic text format has no exemplars

    families = {f.name: f for f in text_string_to_metric_families(openmetrics.text)}
    buckets = [
        s
        for s in families["picture_http_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
        and s.labels.get("service") == "exemplar-test"
        and s.labels.get("route") == "/v1/things/{thing_id}"
    ]
    exemplars = [s.exemplar for s in buckets if s.exemplar is not None]
    assert [e.labels for e in exemplars] == [{"trace_id": TRACE_ID}]  # in the request's bucket only
    assert 0 < exemplars[0].value < 10


def test_a_stored_trace_context_gives_its_trace_id_as_exemplar() -> None:
    assert carrier_exemplar({"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}) == {"trace_id": TRACE_ID}
    assert carrier_exemplar({"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-00"}) is None  # not sampled
    assert carrier_exemplar({}) is None
    assert carrier_exemplar(None) is None
