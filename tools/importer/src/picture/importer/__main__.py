"""The ``picture-import`` command line (see :mod:`picture.importer`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx

from picture.common.messaging import Bus
from picture.importer.report import Report
from picture.importer.run import Progress, Services, run_import
from picture.importer.source import DirectoryObjects, ObjectSource, S3Objects, read_tables

DEVELOPMENT_INTERNAL_TOKEN = "picture-development-internal-token"  # noqa: S105 - media's development default


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="picture-import", description="Import the old Picture data into the new services."
    )
    parser.add_argument("--source-db", required=True, help="the old database URL (postgresql://...)")
    parser.add_argument("--source-schema", default="public", help="the old tables' schema")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--objects", type=Path, help="folder holding the old buckets (generated-images/, user-uploads/)"
    )
    source.add_argument(
        "--s3-endpoint-url", help="S3 API holding the old buckets (Supabase storage's S3 endpoint, say)"
    )
    parser.add_argument("--s3-region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--s3-access-key-id", default=os.environ.get("AWS_ACCESS_KEY_ID"))
    parser.add_argument("--s3-secret-access-key", default=os.environ.get("AWS_SECRET_ACCESS_KEY"))
    parser.add_argument("--nats-url", default=os.environ.get("PICTURE_NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument(
        "--media-url", default=os.environ.get("PICTURE_MEDIA_INTERNAL_URL", "http://127.0.0.1:8083")
    )
    parser.add_argument(
        "--media-token", default=os.environ.get("PICTURE_MEDIA_INTERNAL_TOKEN", DEVELOPMENT_INTERNAL_TOKEN)
    )
    parser.add_argument(
        "--gateway-url", default=os.environ.get("PICTURE_PUBLIC_URL"), help="for per-user limits (admin API)"
    )
    parser.add_argument(
        "--admin-token", default=os.environ.get("PICTURE_ADMIN_TOKEN"), help="an administrator's access token"
    )
    parser.add_argument("--dry-run", action="store_true", help="report what would be imported; write nothing")
    parser.add_argument("--concurrency", type=int, default=4, help="images processed at a time")
    parser.add_argument("--report-json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> Report:
    tables, missing = await read_tables(args.source_db, args.source_schema)
    async with AsyncExitStack() as stack:
        objects = await _objects(args, stack)
        report = await _run(args, tables, objects)
    report.missing_tables = missing
    return report


async def _objects(args: argparse.Namespace, stack: AsyncExitStack) -> ObjectSource:
    if args.objects is not None:
        return DirectoryObjects(args.objects)
    import aioboto3  # type: ignore[import-untyped]

    session = aioboto3.Session(
        aws_access_key_id=args.s3_access_key_id,
        aws_secret_access_key=args.s3_secret_access_key,
        region_name=args.s3_region,
    )
    client = await stack.enter_async_context(session.client("s3", endpoint_url=args.s3_endpoint_url))
    return S3Objects(client)


async def _run(
    args: argparse.Namespace, tables: Mapping[str, Sequence[Mapping[str, Any]]], objects: ObjectSource
) -> Report:
    progress = None if args.quiet else Progress()
    if args.dry_run:
        report = await run_import(tables, objects, None, progress=progress)
    else:
        bus = await Bus.connect(args.nats_url, "importer", query_timeout=10.0)
        try:
            async with (
                httpx.AsyncClient(base_url=args.media_url, timeout=120) as media,
                httpx.AsyncClient(
                    base_url=args.gateway_url or "http://gateway.invalid", timeout=30
                ) as gateway,
            ):
                services = Services(
                    bus, media, args.media_token, gateway if args.gateway_url else None, args.admin_token
                )
                report = await run_import(
                    tables, objects, services, concurrency=args.concurrency, progress=progress
                )
        finally:
            await bus.close()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(run(args))
    print(report.to_text())
    if args.report_json is not None:
        args.report_json.write_text(report.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
