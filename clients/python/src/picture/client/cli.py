"""``picture``: the command line of the Picture API.

    picture login --token T                 store the token (~/.config/picture/config.json, mode 600)
    picture models                          the active models (default first)
    picture generate "a cat" --model flux-schnell --size 1344x768 --seed 7 --out cat.webp
    picture batch prompts.txt --size 512x512 --out-dir out/   one prompt per line
    picture status ID | picture cancel ID   a generation
    picture images --tag cats               your gallery
    picture limits                          quotas and what is left

``--json`` prints JSON only on stdout (progress and messages go to stderr).

Exit codes (scripts can rely on them):
    0  ok
    1  the generation (or a batch item) failed or was cancelled; or the request conflicts with
       the current state (409, e.g. cancelling a finished generation)
    2  usage error (bad arguments, or input the API refused: 400/422)
    3  authentication error (no token, invalid or expired token: run `picture login`)
    4  not found
    5  rate limited or quota reached (the message says when it resets)
    6  server or transport error (5xx, gateway unreachable, timed out)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel

from picture.client import _common as cm
from picture.client import _models as m
from picture.client._config import resolve_base_url, save_config
from picture.client._retry import RetryPolicy
from picture.client.client import Picture
from picture.client.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PictureError,
    RateLimitError,
    ServerError,
    TransportError,
    ValidationError,
    WaitTimeoutError,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_RATE_LIMITED, EXIT_SERVER = range(7)
PROGRESS = {"pending": 0.0, "queued": 0.05, "processing": 0.5, "downloading": 0.9}


class UsageError(Exception):
    pass


# ---------------------------------------------------------------------------------- output


def emit(args: argparse.Namespace, value: Any, text: Callable[[], str]) -> None:
    """stdout: JSON with --json, else the human text."""
    if args.json:
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        elif isinstance(value, list):
            value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
        print(json.dumps(value, indent=2, default=str))
    else:
        print(text())


def note(message: str) -> None:
    print(message, file=sys.stderr)


def _local(when: datetime | None) -> str:
    if when is None:
        return "unknown"
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


class ProgressLine:
    """A live progress line on stderr: a redrawn bar on a terminal, plain lines otherwise
    (one per change), nothing at all with ``quiet``."""

    def __init__(self, stream: TextIO, *, quiet: bool = False) -> None:
        self.stream = stream
        self.tty = stream.isatty() and not quiet
        self.quiet = quiet
        self.started = time.monotonic()
        self.state: tuple[str, int | None, float | None] = ("submitting", None, None)
        self.last_plain: tuple[str, int | None] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> ProgressLine:
        if self.tty:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(1)
        if self.tty:
            with self._lock:
                self._draw()
                self.stream.write("\n")
                self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                self._draw()

    def _text(self) -> str:
        status, position, eta = self.state
        parts = [f"{status:<11}"]
        if position is not None:
            parts.append(f"queue position {position}")
        if eta is not None:
            parts.append(f"eta {eta:.0f}s")
        parts.append(f"elapsed {time.monotonic() - self.started:.1f}s")
        return "  ".join(parts)

    def _draw(self) -> None:
        fraction = 1.0 if self.state[0] in cm.TERMINAL else PROGRESS.get(self.state[0], 0.0)
        filled = int(fraction * 20)
        bar = "#" * filled + "-" * (20 - filled)
        self.stream.write(f"\r[{bar}] {self._text()}\x1b[K")
        self.stream.flush()

    def update(self, generation: m.GenerationOut) -> None:
        status = cm.status_of(generation)
        with self._lock:
            self.state = (status, generation.queue_position, generation.eta_seconds)
            if self.quiet:
                return
            if self.tty:
                self._draw()
            elif self.last_plain != (status, generation.queue_position):
                self.last_plain = (status, generation.queue_position)
                self.stream.write(f"{generation.id} {self._text()}\n")
                self.stream.flush()


# ---------------------------------------------------------------------------------- commands


def _client(args: argparse.Namespace) -> Picture:
    return Picture(args.token, base_url=args.base_url, timeout=args.http_timeout)


def _default_model(client: Picture) -> str:
    models = client.models().data
    for model in models:
        if model.is_default:
            return model.name
    if not models:
        raise UsageError("the gateway lists no models: pass --model")
    return models[0].name


def _params(args: argparse.Namespace) -> dict[str, Any]:
    try:
        width, height = cm.parse_size(args.size)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return {
        "width": width,
        "height": height,
        "seed": args.seed,
        "negative_prompt": args.negative_prompt,
        "steps": args.steps,
        "guidance_scale": args.guidance_scale,
    }


def cmd_login(args: argparse.Namespace) -> int:
    token = args.login_token or os.environ.get("PICTURE_TOKEN")
    if not token:
        raise UsageError("give the token: picture login --token <TOKEN>")
    base_url = resolve_base_url(args.base_url)
    with Picture(
        token, base_url=base_url, timeout=args.http_timeout, retry=RetryPolicy(max_retries=1)
    ) as client:
        try:
            me = client.me()
            who: str = me.username or str(me.id)
        except TransportError:
            who = "(gateway not reachable; token not checked)"
    values: dict[str, Any] = {"token": token}
    if args.base_url:
        values["base_url"] = base_url
    path = save_config(values)
    emit(
        args,
        {"base_url": base_url, "user": who, "config": str(path)},
        lambda: f"logged in to {base_url} as {who}",
    )
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    with _client(args) as client:
        models = client.models()

    def text() -> str:
        rows = [
            f"{x.name:<24} {x.default_width}x{x.default_height:<6} ~{x.estimated_time_seconds:.0f}s"
            f"{'  (default)' if x.is_default else ''}  {x.display_name}"
            for x in models.data
        ]
        return "\n".join(rows) or "no models"

    emit(args, models, text)
    return EXIT_OK


def _generation_text(g: m.GenerationOut) -> str:
    lines = [f"id:      {g.id}", f"status:  {cm.status_of(g)}", f"model:   {g.model}  {g.width}x{g.height}"]
    lines.append(f"prompt:  {g.prompt}")
    if g.queue_position is not None:
        lines.append(f"queue:   position {g.queue_position}")
    if g.error_message:
        lines.append(f"error:   {g.error_message}")
    if g.image is not None:
        lines.append(f"image:   {g.image.url} ({g.image.format}, {g.image.file_size} bytes)")
    return "\n".join(lines)


def _outcome(g: m.GenerationOut) -> int:
    status = cm.status_of(g)
    if status in ("failed", "cancelled"):
        note(f"generation {g.id} {status}" + (f": {g.error_message}" if g.error_message else ""))
        return EXIT_FAILED
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    params = _params(args)
    with _client(args) as client:
        model = args.model or _default_model(client)
        with ProgressLine(sys.stderr, quiet=args.quiet) as progress:
            generation = client.submit(args.prompt, model=model, **params)
            progress.update(generation)
            if args.no_wait:
                emit(args, generation, lambda: _generation_text(generation))
                return EXIT_OK
            if cm.status_of(generation) not in cm.TERMINAL:
                generation = client.wait(str(generation.id), timeout=args.timeout, on_update=progress.update)
        code = _outcome(generation)
        if code == EXIT_OK and args.out:
            path = client.download(generation, args.out)
            note(f"saved {path}")
    emit(args, generation, lambda: _generation_text(generation))
    return code


def _read_prompts(source: str) -> list[str]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror}") from None
    prompts = [
        line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    if not prompts:
        raise UsageError(f"{source} holds no prompts (one a line)")
    return prompts


def cmd_batch(args: argparse.Namespace) -> int:
    prompts = _read_prompts(args.file)
    params = _params(args)
    with _client(args) as client:
        model = args.model or _default_model(client)
        chunks = [prompts[i : i + cm.BATCH_MAX_PROMPTS] for i in range(0, len(prompts), cm.BATCH_MAX_PROMPTS)]
        batches = [client.submit_batch(chunk, model=model, **params) for chunk in chunks]
        for b in batches:
            note(f"batch {b.id}: {b.total} prompts submitted")
        if not args.no_wait:
            seen: dict[str, tuple[int, int]] = {}

            def on_batch(b: m.BatchOut) -> None:
                counts = (b.completed, b.failed)
                if seen.get(str(b.id)) != counts and not args.quiet:
                    seen[str(b.id)] = counts
                    note(f"batch {b.id}: {b.completed}/{b.total} done, {b.failed} failed ({cm.status_of(b)})")

            batches = [
                client.wait_batch(str(b.id), timeout=args.timeout, on_update=on_batch) for b in batches
            ]
        if args.out_dir and not args.no_wait:
            out_dir = Path(args.out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            for b in batches:
                for item in b.items:
                    if item.image is not None:
                        client.download(
                            str(item.image.id), out_dir / f"{b.id}-{item.index:02d}.{item.image.format}"
                        )
    failed = sum(b.failed for b in batches) if not args.no_wait else 0

    def text() -> str:
        rows = []
        for b in batches:
            for item in b.items:
                url = item.image.url if item.image else (item.error_message or "")
                rows.append(f"{item.generation_id}  {cm.status_of(item):<10} {item.prompt[:40]:<40} {url}")
        return "\n".join(rows)

    emit(args, batches, text)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        generation = client.generation(args.id)
    emit(args, generation, lambda: _generation_text(generation))
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        generation = client.cancel(args.id)
    emit(args, generation, lambda: _generation_text(generation))
    return EXIT_OK


def cmd_images(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.images(tags=args.tag, favorite=True if args.favorite else None, limit=args.limit)

    def text() -> str:
        rows = [
            f"{i.id}  {i.width}x{i.height} {i.format:<5} {','.join(i.tags) or '-':<16} {i.prompt[:50]}"
            for i in page.data
        ]
        return "\n".join(rows) or "no images"

    emit(args, page, text)
    return EXIT_OK


def cmd_limits(args: argparse.Namespace) -> int:
    with _client(args) as client:
        limits = client.limits()

    def text() -> str:
        state = "you can generate" if limits.can_generate else f"limit reached ({limits.limit_reason})"
        return "\n".join(
            [
                state,
                f"hourly:     {limits.hourly_used}/{limits.hourly_limit}"
                f" (resets {_local(limits.hourly_reset_at)})",
                f"daily:      {limits.daily_used}/{limits.daily_limit}"
                f" (resets {_local(limits.daily_reset_at)})",
                f"concurrent: {limits.active_generations}/{limits.max_concurrent}",
                f"all time:   {limits.total_all_time}",
            ]
        )

    emit(args, limits, text)
    return EXIT_OK


# ---------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    base = argparse.ArgumentParser(add_help=False)
    base.add_argument("--json", action="store_true", help="print JSON only on stdout (for scripts)")
    base.add_argument("--base-url", help="gateway URL (env PICTURE_BASE_URL; default http://127.0.0.1:8080)")
    base.add_argument("--http-timeout", type=float, default=30.0, help=argparse.SUPPRESS)
    common = argparse.ArgumentParser(add_help=False, parents=[base])
    common.add_argument("--token", help="access token (env PICTURE_TOKEN; default: the one stored by login)")

    parser = argparse.ArgumentParser(
        prog="picture",
        description="Generate images with the Picture API.",
        epilog=__doc__.split("Exit codes", 1)[1].join(["Exit codes", ""]) if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    login = sub.add_parser("login", parents=[base], help="store an access token")
    login.add_argument("--token", dest="login_token", help="the access token (make -s token in development)")
    login.set_defaults(run=cmd_login, token=None)

    sub.add_parser("models", parents=[common], help="list the models").set_defaults(run=cmd_models)

    def generation_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", help="model name (default: the gateway's default model)")
        p.add_argument("--size", help="WIDTHxHEIGHT, e.g. 1344x768 (default: the model's)")
        p.add_argument("--seed", type=int)
        p.add_argument("--negative-prompt")
        p.add_argument("--steps", type=int)
        p.add_argument("--guidance-scale", type=float)
        p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (default 600)")
        p.add_argument("--no-wait", action="store_true", help="submit and return at once")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")

    generate = sub.add_parser("generate", parents=[common], help="generate one image and wait for it")
    generate.add_argument("prompt")
    generation_options(generate)
    generate.add_argument("--out", "-o", help="save the image to this file")
    generate.set_defaults(run=cmd_generate)

    batch = sub.add_parser(
        "batch", parents=[common], help="generate one image per line of a file (- = stdin)"
    )
    batch.add_argument("file")
    generation_options(batch)
    batch.add_argument("--out-dir", help="save the images into this folder")
    batch.set_defaults(run=cmd_batch)

    status = sub.add_parser("status", parents=[common], help="show a generation")
    status.add_argument("id")
    status.set_defaults(run=cmd_status)

    cancel = sub.add_parser("cancel", parents=[common], help="cancel a queued or running generation")
    cancel.add_argument("id")
    cancel.set_defaults(run=cmd_cancel)

    images = sub.add_parser("images", parents=[common], help="list your images")
    images.add_argument("--tag", action="append", help="only images with this tag (repeat: all of them)")
    images.add_argument("--favorite", action="store_true", help="only favorites")
    images.add_argument("--limit", type=int, default=20)
    images.set_defaults(run=cmd_images)

    sub.add_parser("limits", parents=[common], help="your quotas and what is left").set_defaults(
        run=cmd_limits
    )
    return parser


def explain(exc: PictureError) -> tuple[int, str]:
    """The exit code and the message for an SDK error."""
    if isinstance(exc, AuthenticationError):
        if exc.expired:
            return EXIT_AUTH, "your token expired, run picture login"
        if exc.status == 403:
            return EXIT_AUTH, f"not allowed: {exc.detail or exc.title}"
        return EXIT_AUTH, f"not logged in or invalid token ({exc.detail or exc.title}): run picture login"
    if isinstance(exc, RateLimitError):
        reason = exc.limit_reason or "rate"
        detail = exc.detail or "too many requests"
        if reason in ("hourly", "daily"):
            return EXIT_RATE_LIMITED, f"quota reached: {detail}; resets at {_local(exc.reset)}"
        wait = (
            f"; retry in {exc.retry_after:.0f}s (at {_local(exc.reset)})"
            if exc.retry_after is not None
            else ""
        )
        return EXIT_RATE_LIMITED, f"rate limited: {detail}{wait}"
    if isinstance(exc, NotFoundError):
        return EXIT_NOT_FOUND, f"not found: {exc.detail or exc.title}"
    if isinstance(exc, ValidationError):
        where = f" ({exc.field})" if exc.field else ""
        return EXIT_USAGE, f"invalid request{where}: {exc.detail or exc.title}"
    if isinstance(exc, ConflictError):
        return EXIT_FAILED, f"conflict: {exc.detail or exc.title}"
    if isinstance(exc, ServerError | TransportError | WaitTimeoutError):
        return EXIT_SERVER, str(exc)
    return EXIT_SERVER, str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except UsageError as exc:
        parser.exit(EXIT_USAGE, f"picture: error: {exc}\n")
    except PictureError as exc:
        code, message = explain(exc)
        note(f"picture: {message}")
        if args.json:
            print(json.dumps({"error": message, "exit_code": code, "problem": exc.problem}, default=str))
    except KeyboardInterrupt:
        note("interrupted")
        return 130
    return code


def run() -> None:
    sys.exit(main())
