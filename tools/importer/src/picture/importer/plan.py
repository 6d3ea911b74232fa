"""From the old product's rows to the new services' import requests: pure, no I/O.

The known defects of the old data are repaired here, each one said in the report:

- a generation left ``pending``/``queued``/``processing``/``downloading`` (a failure after the
  prediction left it there) becomes failed, with the reason in its history;
- a cancel stored as failed "Cancelled by user" becomes cancelled;
- seed 0 and guidance 0 are values, not "missing" (no falsy checks);
- a completed generation whose image file is gone becomes failed ("image missing at import");
- an image pointing at a generation that does not exist keeps the image, without the link;
- text PostgreSQL cannot store (NUL, unpaired surrogates) is kept with U+FFFD in their place;
- tags and likes of images or tags that do not exist, ratings outside 0-5, usernames the new
  rules refuse, tag colours that are not ``#rrggbb``: skipped or dropped, with the reason.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from picture.common import contracts as c
from picture.common.text import storable, unstorable_reason

Row = Mapping[str, Any]

STUCK = frozenset({"pending", "queued", "processing", "downloading"})
CANCELLED_MESSAGE = "Cancelled by user"
USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{3,32}$")
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
# Ids of images made here for a completed generation that had a file but no images row.
IMAGE_NAMESPACE = uuid.UUID("6f1d3a52-7c4b-4f5e-9a61-2b8e0c7d4a19")


@dataclass(frozen=True)
class Skip:
    table: str
    key: str
    reason: str


@dataclass(frozen=True)
class PlannedImage:
    """An image to store (from ``paths``, the first that exists) and record."""

    request: c.ImportImageRequest  # objects filled in once media stored the file
    paths: tuple[str, ...]


@dataclass(frozen=True)
class PlannedGeneration:
    request: c.ImportGenerationRequest
    image: PlannedImage | None  # a completed generation's image


@dataclass(frozen=True)
class PlannedLimits:
    """A user's own limits (the gateway's; None: the default)."""

    user_id: uuid.UUID
    hourly_limit: int | None
    daily_limit: int | None
    max_concurrent: int | None


@dataclass
class Plan:
    profiles: list[c.ImportProfileRequest] = field(default_factory=list)
    tags: list[c.ImportTagRequest] = field(default_factory=list)
    templates: list[c.ImportTemplateRequest] = field(default_factory=list)
    batches: list[c.ImportBatchRequest] = field(default_factory=list)
    limits: list[PlannedLimits] = field(default_factory=list)
    generations: list[PlannedGeneration] = field(default_factory=list)
    images: list[PlannedImage] = field(default_factory=list)  # without a generation (uploads)
    skipped: list[Skip] = field(default_factory=list)
    notes: list[Skip] = field(default_factory=list)  # imported, but changed: what and why


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _time(value: Any, fallback: datetime | None = None) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return fallback or datetime(1970, 1, 1, tzinfo=UTC)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _text(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value)


def model_of(row: Row, models: Mapping[str, c.ModelSpec]) -> c.ModelSpec:
    """The catalog's model by exact name (never a substring: the old product's defect), else
    by Replicate id; an unknown one is described from the row so the generation still shows."""
    name = _text(row.get("model")) or _text(row.get("model_id")) or "unknown"
    if name in models:
        return models[name]
    by_replicate = {m.replicate_id: m for m in models.values()}
    replicate_id = _text(row.get("model_id")) or ""
    if replicate_id in by_replicate:
        return by_replicate[replicate_id]
    return c.ModelSpec(
        name=name[:64],
        display_name=name[:128],
        replicate_id=replicate_id if "/" in replicate_id else "unknown/unknown",
        is_active=False,
    )


def _parameters(row: Row) -> c.GenerationParameters:
    strength = _float(row.get("generation_strength"))
    return c.GenerationParameters(
        prompt=str(row.get("prompt") or ""),
        negative_prompt=_text(row.get("negative_prompt")),
        width=_int(row.get("width")) or 1024,
        height=_int(row.get("height")) or 1024,
        steps=_int(row.get("steps")),
        guidance_scale=_float(row.get("guidance_scale")),
        seed=_int(row.get("seed")),
        strength=strength if strength is not None and 0 <= strength <= 1 else None,
    )


def _status(row: Row) -> tuple[c.GenerationStatus, str | None, str]:
    """(new status, error message, reason for the history) of an old generation row."""
    old = str(row.get("status") or "").lower()
    message = _text(row.get("error_message"))
    if old == "completed":
        return c.GenerationStatus.COMPLETED, None, "imported"
    if old == "failed" and message == CANCELLED_MESSAGE:
        return c.GenerationStatus.CANCELLED, message, "cancelled by the user (stored as failed before)"
    if old == "failed":
        return c.GenerationStatus.FAILED, message or "failed", "imported"
    if old == "cancelled":
        return c.GenerationStatus.CANCELLED, message or CANCELLED_MESSAGE, "imported"
    if old in STUCK:
        return (
            c.GenerationStatus.FAILED,
            message or f"Never finished: left {old} by the previous backend",
            f"it was still {old} when the previous backend stopped",
        )
    return c.GenerationStatus.FAILED, message or f"Unknown status {old!r}", f"unknown old status {old!r}"


def _generated_paths(
    user_id: uuid.UUID, generation_id: uuid.UUID, storage_path: str | None
) -> tuple[str, ...]:
    """Where the old bucket kept a generated image: the row's path, else {user}/{generation}.*"""
    paths = []
    if storage_path:
        paths += [storage_path, f"generated-images/{storage_path}"]
    paths += [
        f"generated-images/{user_id}/{generation_id}.{ext}" for ext in ("webp", "png", "jpg", "jpeg", "svg")
    ]
    return tuple(dict.fromkeys(paths))


def _upload_paths(storage_path: str | None) -> tuple[str, ...]:
    if not storage_path:
        return ()
    return tuple(
        dict.fromkeys([storage_path, f"user-uploads/{storage_path}", f"generated-images/{storage_path}"])
    )


def build_plan(
    tables: Mapping[str, Sequence[Row]],
    models: Mapping[str, c.ModelSpec],
) -> Plan:
    """The requests to send, in order, and what is skipped or changed (with reasons)."""
    plan = Plan()
    tables = {name: [_storable_row(plan, name, row) for row in rows] for name, rows in tables.items()}
    _plan_profiles(plan, tables.get("profiles", ()))
    tag_names = _plan_tags(plan, tables.get("tags", ()))
    _plan_templates(plan, tables.get("prompt_templates", ()))
    _plan_limits(plan, tables.get("user_rate_limits", ()))

    generations = {}
    for row in tables.get("image_generations", ()):
        gid, uid = _uuid(row.get("id")), _uuid(row.get("user_id"))
        if gid is None or uid is None:
            plan.skipped.append(Skip("image_generations", str(row.get("id")), "bad value: id or user_id"))
            continue
        generations[gid] = row

    batch_of = _plan_batches(plan, tables.get("batch_generations", ()), generations, models)

    images_by_id: dict[uuid.UUID, Row] = {}
    image_of_generation: dict[uuid.UUID, uuid.UUID] = {}
    for row in sorted(tables.get("images", ()), key=lambda r: _time(r.get("created_at"))):
        iid, uid = _uuid(row.get("id")), _uuid(row.get("user_id"))
        if iid is None or uid is None:
            plan.skipped.append(Skip("images", str(row.get("id")), "bad value: id or user_id"))
            continue
        images_by_id[iid] = row
        gid = _uuid(row.get("generation_id"))
        if (
            gid is not None
            and gid in generations
            and gid not in image_of_generation
            and _uuid(generations[gid].get("user_id")) == uid
        ):
            image_of_generation[gid] = iid

    tags_of: dict[uuid.UUID, list[str]] = defaultdict(list)
    for row in tables.get("image_tags", ()):
        iid, tid = _uuid(row.get("image_id")), row.get("tag_id")
        key = f"{row.get('image_id')}/{tid}"
        if iid not in images_by_id:
            plan.skipped.append(Skip("image_tags", key, "orphan row: no such image"))
        elif tid is None or str(tid) not in tag_names:
            plan.skipped.append(Skip("image_tags", key, "orphan row: no such tag"))
        else:
            tags_of[iid].append(tag_names[str(tid)])
    likes_of: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for row in tables.get("image_likes", ()):
        iid, uid = _uuid(row.get("image_id")), _uuid(row.get("user_id"))
        key = f"{row.get('image_id')}/{row.get('user_id')}"
        if iid not in images_by_id:
            plan.skipped.append(Skip("image_likes", key, "orphan row: no such image"))
        elif uid is None:
            plan.skipped.append(Skip("image_likes", key, "bad value: user_id"))
        else:
            likes_of[iid].append(uid)

    def image_request(iid: uuid.UUID, row: Row, gid: uuid.UUID | None) -> c.ImportImageRequest | None:
        uid = _uuid(row.get("user_id"))
        assert uid is not None
        rating = _int(row.get("rating"))
        if rating is not None and not 0 <= rating <= 5:
            plan.notes.append(Skip("images", str(iid), f"bad value: rating {rating} dropped"))
            rating = None
        filename = _text(row.get("filename")) or f"{iid}.webp"
        try:
            return c.ImportImageRequest(
                image_id=iid,
                user_id=uid,
                generation_id=gid,
                filename=filename[-255:],
                objects=(_PLACEHOLDER,),
                prompt=str(row.get("prompt") or ""),
                negative_prompt=_text(row.get("negative_prompt")),
                model=(_text(row.get("model")) or "")[:64] or None,
                seed=_int(generations[gid].get("seed")) if gid is not None else None,
                is_public=bool(row.get("is_public") or False),
                is_favorite=bool(row.get("is_favorite") or False),
                rating=rating,
                download_count=max(0, _int(row.get("download_count")) or 0),
                archived_at=row.get("archived_at"),
                created_at=_time(row.get("created_at")),
                tags=tuple(dict.fromkeys(tags_of.get(iid, ()))),
                liked_by=tuple(dict.fromkeys(likes_of.get(iid, ()))),
            )
        except ValidationError as exc:
            plan.skipped.append(Skip("images", str(iid), f"bad value: {_first_error(exc)}"))
            return None

    for gid, row in sorted(generations.items(), key=lambda item: _time(item[1].get("created_at"))):
        uid = _uuid(row.get("user_id"))
        assert uid is not None
        status, message, reason = _status(row)
        if reason != "imported":
            plan.notes.append(Skip("image_generations", str(gid), reason))
        created = _time(row.get("created_at"))
        image: PlannedImage | None = None
        if status is c.GenerationStatus.COMPLETED:
            iid = image_of_generation.get(gid)
            image_row: Row = (
                images_by_id[iid] if iid is not None else {**row, "created_at": row.get("completed_at")}
            )
            if iid is None:
                iid = uuid.uuid5(IMAGE_NAMESPACE, str(gid))
                plan.notes.append(
                    Skip("image_generations", str(gid), "completed without an images row: made one")
                )
            request = image_request(iid, image_row, gid)
            if request is not None:
                image = PlannedImage(
                    request, _generated_paths(uid, gid, _text(image_row.get("storage_path")))
                )
            else:
                status, message, reason = (
                    c.GenerationStatus.FAILED,
                    "image missing at import",
                    "its image was unusable",
                )
        try:
            generation = c.ImportGenerationRequest(
                generation_id=gid,
                user_id=uid,
                model=model_of(row, models),
                parameters=_parameters(row),
                status=status,
                error_message=message,
                retry_count=max(0, _int(row.get("retry_count")) or 0),
                created_at=created,
                completed_at=row.get("completed_at") or None,
                reason=reason,
                batch_id=batch_of.get(gid, (None, None))[0],
                batch_index=batch_of.get(gid, (None, None))[1],
            )
        except ValidationError as exc:
            plan.skipped.append(Skip("image_generations", str(gid), f"bad value: {_first_error(exc)}"))
            continue
        plan.generations.append(PlannedGeneration(generation, image))

    linked = set(image_of_generation.values())
    for iid, row in images_by_id.items():
        if iid in linked:
            continue
        gid = _uuid(row.get("generation_id"))
        if gid is not None:
            why = "no such generation" if gid not in generations else "another image holds the generation"
            plan.notes.append(Skip("images", str(iid), f"orphan link: {why}; imported without it"))
        request = image_request(iid, row, None)
        if request is not None:
            uid = _uuid(row.get("user_id"))
            path = _text(row.get("storage_path"))
            paths = _upload_paths(path)
            if gid is not None and uid is not None:
                paths += _generated_paths(uid, gid, None)
            plan.images.append(PlannedImage(request, paths))
    return plan


# Stands for the objects media has not stored yet (the request is completed with the real ones).
_PLACEHOLDER = c.StoredObject(
    key="pending/import",
    role="original",
    content_type="image/webp",
    size=0,
    width=1,
    height=1,
    sha256="0" * 64,
)


def _storable_row(plan: Plan, table: str, row: Row) -> Row:
    """The row with its texts made storable (the old database took what ours refuses)."""
    bad = [k for k, v in row.items() if isinstance(v, str) and unstorable_reason(v) is not None]
    if not bad:
        return row
    plan.notes.append(
        Skip(table, str(row.get("id", row.get("user_id"))), f"bad value: {', '.join(bad)} cleaned")
    )
    return {k: storable(v) if k in bad else v for k, v in row.items()}


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"


def _plan_profiles(plan: Plan, rows: Iterable[Row]) -> None:
    for row in rows:
        uid = _uuid(row.get("id"))
        if uid is None:
            plan.skipped.append(Skip("profiles", str(row.get("id")), "bad value: id"))
            continue
        username = _text(row.get("username"))
        if username is not None and not USERNAME.match(username):
            plan.notes.append(Skip("profiles", str(uid), f"bad value: username {username!r} dropped"))
            username = None
        created = _time(row.get("created_at"))
        try:
            plan.profiles.append(
                c.ImportProfileRequest(
                    user_id=uid,
                    email=_text(row.get("email")),
                    username=username,
                    avatar_url=_text(row.get("avatar_url")),
                    created_at=created,
                    updated_at=_time(row.get("updated_at"), created),
                )
            )
        except ValidationError as exc:
            plan.skipped.append(Skip("profiles", str(uid), f"bad value: {_first_error(exc)}"))


def _plan_tags(plan: Plan, rows: Iterable[Row]) -> dict[str, str]:
    """Queues the tags; returns old tag id -> name, for the image tags."""
    names: dict[str, str] = {}
    for row in rows:
        name = " ".join(str(row.get("name") or "").split()).lower()
        if not name or len(name) > 50:
            plan.skipped.append(Skip("tags", str(row.get("id")), f"bad value: name {row.get('name')!r}"))
            continue
        color = str(row.get("color") or "")
        if not COLOR.match(color):
            if color:
                plan.notes.append(Skip("tags", str(row.get("id")), f"bad value: color {color!r} replaced"))
            color = "#6b7280"
        names[str(row.get("id"))] = name
        plan.tags.append(
            c.ImportTagRequest(tag=c.ImportedTag(name=name, color=color), created_at=row.get("created_at"))
        )
    return names


def _plan_templates(plan: Plan, rows: Iterable[Row]) -> None:
    for row in rows:
        tid, uid = _uuid(row.get("id")), _uuid(row.get("user_id"))
        if tid is None or uid is None:
            plan.skipped.append(Skip("prompt_templates", str(row.get("id")), "bad value: id or user_id"))
            continue
        if not _text(row.get("prompt")):
            plan.skipped.append(Skip("prompt_templates", str(tid), "bad value: empty prompt"))
            continue
        created = _time(row.get("created_at"))
        try:
            plan.templates.append(
                c.ImportTemplateRequest(
                    template=c.TemplateView(
                        id=tid,
                        user_id=uid,
                        name=str(row.get("name") or "")[:100] or "Untitled",
                        prompt=str(row.get("prompt") or ""),
                        negative_prompt=_text(row.get("negative_prompt")),
                        category=(_text(row.get("category")) or "")[:50] or None,
                        is_public=bool(row.get("is_public") or False),
                        use_count=max(0, _int(row.get("use_count")) or 0),
                        created_at=created,
                        updated_at=_time(row.get("updated_at"), created),
                    )
                )
            )
        except ValidationError as exc:
            plan.skipped.append(Skip("prompt_templates", str(tid), f"bad value: {_first_error(exc)}"))


def _plan_batches(
    plan: Plan,
    rows: Iterable[Row],
    generations: Mapping[uuid.UUID, Row],
    models: Mapping[str, c.ModelSpec],
) -> dict[uuid.UUID, tuple[uuid.UUID, int]]:
    """Queues the batches; returns generation id -> (batch id, index). A quick multi-generation
    the old product kept only as ``multi_group_id`` becomes a batch of kind "multi"."""
    owners: dict[uuid.UUID, uuid.UUID] = {}
    for row in rows:
        bid, uid = _uuid(row.get("id")), _uuid(row.get("user_id"))
        if bid is None or uid is None:
            plan.skipped.append(Skip("batch_generations", str(row.get("id")), "bad value: id or user_id"))
            continue
        owners[bid] = uid
        plan.batches.append(
            c.ImportBatchRequest(
                batch_id=bid,
                user_id=uid,
                name=(_text(row.get("name")) or "")[:200] or None,
                kind="multi" if row.get("is_multi_generation") else "batch",
                model=model_of({"model_id": row.get("model_id")}, models).name,
                created_at=_time(row.get("created_at")),
            )
        )
    members: dict[uuid.UUID, list[tuple[int | None, datetime, uuid.UUID]]] = defaultdict(list)
    for gid, row in generations.items():
        bid, uid = _uuid(row.get("batch_id")), _uuid(row.get("user_id"))
        index = _int(row.get("batch_index"))
        group = _uuid(row.get("multi_group_id"))
        if bid is not None and owners.get(bid) != uid:
            plan.notes.append(Skip("image_generations", str(gid), "orphan link: no such batch of its user"))
            bid = None
        if bid is None and group is not None and uid is not None:
            if group not in owners:
                owners[group] = uid
                plan.batches.append(
                    c.ImportBatchRequest(
                        batch_id=group,
                        user_id=uid,
                        kind="multi",
                        model=model_of(row, models).name,
                        created_at=_time(row.get("created_at")),
                    )
                )
            if owners[group] == uid:
                bid, index = group, _int(row.get("multi_index"))
        if bid is not None:
            members[bid].append((index, _time(row.get("created_at")), gid))
    placed: dict[uuid.UUID, tuple[uuid.UUID, int]] = {}
    for bid, items in members.items():
        items.sort(key=lambda item: (item[0] if item[0] is not None else 1 << 30, item[1]))
        for position, (index, _, gid) in enumerate(items):
            placed[gid] = (bid, index if index is not None and index >= 0 else position)
    return placed


def _plan_limits(plan: Plan, rows: Iterable[Row]) -> None:
    for row in rows:
        uid = _uuid(row.get("user_id"))
        if uid is None:
            plan.skipped.append(Skip("user_rate_limits", str(row.get("user_id")), "bad value: user_id"))
            continue
        values: dict[str, int | None] = {}
        for new, old in (
            ("hourly_limit", "hourly_limit"),
            ("daily_limit", "daily_limit"),
            ("max_concurrent", "max_concurrent_generations"),
        ):
            value = _int(row.get(old))
            if value is not None and value < 0:
                plan.notes.append(Skip("user_rate_limits", str(uid), f"bad value: {old} {value} dropped"))
                value = None
            values[new] = value
        if any(v is not None for v in values.values()):
            plan.limits.append(PlannedLimits(uid, **values))
