"""The media service's FastAPI app: storage, downloader, the ``resolve_object`` query, the
command consumer, the signed object and upload routes, on the shared service skeleton
(engine, NATS, readiness)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial

import httpx
from fastapi import FastAPI

from picture.common import contracts as c
from picture.common.messaging import Route
from picture.common.retention import run_periodically
from picture.common.service import ServiceScope, service_app
from picture.media import accounts, handlers, queries
from picture.media.download import Downloader, DownloadPolicy
from picture.media.imports import router as imports_router
from picture.media.routes import ObjectServing, router
from picture.media.settings import MediaSettings, StorageBackend
from picture.media.signing import UrlSigner
from picture.media.storage import FilesystemStorage, ObjectStorage, S3Storage, open_s3_client
from picture.media.sweep import Sweeper
from picture.media.uploads import UploadContext
from picture.media.uploads import router as uploads_router

SERVICE = "media"


async def build_storage(settings: MediaSettings, stack: AsyncExitStack, signer: UrlSigner) -> ObjectStorage:
    """The configured backend; an S3 client lives as long as ``stack``."""
    if settings.storage_backend is StorageBackend.S3:
        secret = settings.s3_secret_access_key
        client = await open_s3_client(
            stack,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
        )
        return S3Storage(client, settings.s3_bucket)
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    return FilesystemStorage(settings.storage_dir, signer)


def create_app(
    settings: MediaSettings,
    *,
    download_transport: httpx.AsyncBaseTransport | None = None,
    processing: handlers.ProcessingOptions | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def run(scope: ServiceScope) -> AsyncIterator[None]:
        app, engine, bus = scope.app, scope.engine, scope.bus
        signer = UrlSigner(settings.signing_key, settings.media_public_url)
        # Storage and downloader serve the consumer's handlers: closed once the bus has stopped.
        storage = await build_storage(settings, scope.after_bus, signer)
        downloader = Downloader(
            DownloadPolicy(
                allowed_hosts=frozenset(settings.download_allowed_hosts),
                allow_insecure_loopback=settings.download_allow_insecure_loopback,
                allow_insecure_private=settings.download_allow_insecure_private,
                max_bytes=settings.download_max_bytes,
                timeout_seconds=settings.download_timeout_seconds,
            ),
            transport=download_transport,
        )
        scope.after_bus.push_async_callback(downloader.aclose)
        if isinstance(storage, FilesystemStorage):
            app.state.serving = ObjectServing(engine, storage, signer)

        ctx = handlers.MediaContext(
            engine=engine,
            bus=bus,
            storage=storage,
            downloader=downloader,
            options=processing
            or handlers.ProcessingOptions(
                webp_quality=settings.webp_quality,
                webp_method=settings.webp_method,
                max_pixels=settings.max_pixels,
                thumbnail_long_side=settings.thumbnail_long_side,
                embed_provenance=settings.embed_provenance,
                svg_preview_long_side=settings.svg_preview_long_side,
                download_budget_seconds=settings.ingest_download_budget_seconds,
            ),
        )
        app.state.uploads = UploadContext(
            engine=engine,
            bus=bus,
            storage=storage,
            options=ctx.options,
            token=settings.internal_token,
            max_bytes=settings.max_upload_bytes,
        )

        async def resolve_object(req: c.ResolveObjectRequest) -> c.ResolvedObject:
            return await queries.resolve_object(engine, storage, req)

        await bus.serve(c.RESOLVE_OBJECT, resolve_object)
        await bus.start_declared(
            c.MEDIA_COMMANDS,
            [
                Route(c.INGEST, partial(handlers.ingest, ctx)),
                Route(c.DELETE_OBJECTS, partial(handlers.delete_objects, ctx)),
            ],
            max_in_flight=16,
            on_poison=partial(handlers.on_poison, ctx),
        )
        await bus.start_declared(
            c.MEDIA_ACCOUNTS, [Route(c.ACCOUNT_DELETED, partial(accounts.on_account_deleted, ctx))]
        )
        if settings.storage_sweep_enabled:
            sweeper = Sweeper(
                engine,
                bus,
                storage,
                grace_seconds=settings.storage_sweep_grace_seconds,
                batch_size=settings.storage_sweep_batch_size,
                dry_run=settings.storage_sweep_dry_run,
            )
            scope.start_task(
                run_periodically(sweeper.sweep_once, settings.storage_sweep_interval_seconds),
                name="storage-sweep",
            )
        yield

    return service_app(
        SERVICE, settings, run, title="Picture media", routers=(router, uploads_router, imports_router)
    )
