"""The catalog's NATS contracts that the gateway's other routes build on: profiles (ensure
command, get/update queries, unique usernames), prompt templates (CRUD over REST, use counts
by command), admin model edits, upload records."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common import contracts as c
from picture.common.messaging import Bus, QueryFailed
from picture.devstack.stack import Stack
from picture.devstack.tokens import mint_token
from picture.devstack.waiting import eventually


@pytest.fixture
async def bus(stack: Stack) -> AsyncIterator[Bus]:
    assert stack.nats is not None
    connected = await Bus.connect(stack.nats.url, "test-catalog-client", 10.0)
    yield connected
    await connected.close()


async def test_profiles(bus: Bus, db: AsyncEngine) -> None:
    user, rival = uuid.uuid4(), uuid.uuid4()
    await bus.publish(c.ENSURE_PROFILE, c.EnsureProfileCommand(user_id=user, email="a@example.com"))

    async def exists() -> bool:
        async with db.connect() as conn:
            return bool(
                (
                    await conn.execute(
                        text("SELECT count(*) FROM catalog.profiles WHERE id = :u"), {"u": user}
                    )
                ).scalar()
            )

    await eventually(exists, timeout=15, what="the profile created by ensure_profile")
    profile = (await bus.request(c.GET_PROFILE, c.GetProfileRequest(user_id=user))).profile
    assert (profile.email, profile.username) == ("a@example.com", None)
    created = (await bus.request(c.GET_PROFILE, c.GetProfileRequest(user_id=rival, email="b@x.io"))).profile
    assert created.id == rival  # created on the spot when the command has not arrived yet

    name = f"painter_{uuid.uuid4().hex[:8]}"
    updated = await bus.request(
        c.UPDATE_PROFILE, c.UpdateProfileRequest(user_id=user, username=name, avatar_url="https://a/x.png")
    )
    assert (updated.profile.username, updated.profile.avatar_url) == (name, "https://a/x.png")
    with pytest.raises(QueryFailed) as taken:
        await bus.request(c.UPDATE_PROFILE, c.UpdateProfileRequest(user_id=rival, username=name.upper()))
    assert (taken.value.code, taken.value.field) == (c.QueryErrorCode.CONFLICT, "username")
    cleared = await bus.request(c.UPDATE_PROFILE, c.UpdateProfileRequest(user_id=user, clear_avatar=True))
    assert (cleared.profile.username, cleared.profile.avatar_url) == (name, None)


async def test_prompt_templates(stack: Stack, bus: Bus) -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    secret = stack.secrets["PICTURE_JWT_SECRET"]
    async with (
        httpx.AsyncClient(
            base_url=stack.gateway_url, headers={"Authorization": f"Bearer {mint_token(secret, owner)}"}
        ) as mine,
        httpx.AsyncClient(
            base_url=stack.gateway_url, headers={"Authorization": f"Bearer {mint_token(secret, other)}"}
        ) as theirs,
    ):
        category = f"cat-{uuid.uuid4().hex[:8]}"
        private = await mine.post(
            "/v1/prompt-templates", json={"name": "p", "prompt": "a cat", "category": category}
        )
        assert private.status_code == 201, private.text
        public = await mine.post(
            "/v1/prompt-templates",
            json={
                "name": "q",
                "prompt": "a dog",
                "negative_prompt": "blur",
                "category": category,
                "is_public": True,
            },
        )
        private_id, public_id = private.json()["id"], public.json()["id"]
        bad = await mine.post(
            "/v1/prompt-templates", json={"name": "x", "prompt": "y", "user_id": str(other)}
        )
        assert bad.status_code == 422 and "user_id" in bad.text

        own_list = await mine.get("/v1/prompt-templates", params={"category": category, "limit": 1})
        assert [t["id"] for t in own_list.json()["data"]] == [public_id]
        page2 = await mine.get(
            "/v1/prompt-templates",
            params={"category": category, "limit": 1, "cursor": own_list.json()["next_cursor"]},
        )
        assert [t["id"] for t in page2.json()["data"]] == [private_id]
        assert page2.json()["next_cursor"] is None
        seen = await theirs.get("/v1/prompt-templates", params={"category": category})
        assert [(t["id"], t["is_own"]) for t in seen.json()["data"]] == [(public_id, False)]
        assert (await theirs.get(f"/v1/prompt-templates/{private_id}")).status_code == 404
        assert (
            await theirs.patch(f"/v1/prompt-templates/{public_id}", json={"name": "mine"})
        ).status_code == 404
        assert (await theirs.delete(f"/v1/prompt-templates/{public_id}")).status_code == 404

        edited = await mine.patch(
            f"/v1/prompt-templates/{private_id}", json={"is_public": True, "negative_prompt": None}
        )
        assert edited.status_code == 200 and edited.json()["is_public"] is True
        assert (
            await mine.patch(f"/v1/prompt-templates/{private_id}", json={"name": None})
        ).status_code == 422

        cleared = await mine.patch(f"/v1/prompt-templates/{public_id}", json={"negative_prompt": None})
        assert (cleared.json()["negative_prompt"], cleared.json()["name"], cleared.json()["prompt"]) == (
            None,
            "q",
            "a dog",
        )

        generation = uuid.uuid4()
        for _ in range(3):  # redelivered / republished: counted once per generation
            await bus.publish(
                c.TEMPLATE_USED,
                c.TemplateUsedCommand(
                    template_id=uuid.UUID(public_id), generation_id=generation, user_id=other
                ),
            )
        await bus.publish(
            c.TEMPLATE_USED,
            c.TemplateUsedCommand(
                template_id=uuid.UUID(public_id), generation_id=uuid.uuid4(), user_id=owner
            ),
        )

        async def counted() -> bool:
            return bool((await mine.get(f"/v1/prompt-templates/{public_id}")).json()["use_count"] == 2)

        await eventually(counted, timeout=15, what="the template uses counted")
        assert (await mine.delete(f"/v1/prompt-templates/{public_id}")).status_code == 204
        assert (await mine.get(f"/v1/prompt-templates/{public_id}")).status_code == 404


async def test_admin_model_edits(stack: Stack, bus: Bus, token: str, db: AsyncEngine) -> None:
    admin_id = uuid.uuid4()
    admin_token = mint_token(stack.secrets["PICTURE_JWT_SECRET"], admin_id)
    async with (
        httpx.AsyncClient(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}) as api,
        httpx.AsyncClient(
            base_url=stack.gateway_url, headers={"Authorization": f"Bearer {admin_token}"}
        ) as admin,
    ):
        denied = await api.patch("/v1/admin/models/seedream-3", json={"is_active": False})
        assert denied.status_code == 403
        assert (await api.get("/v1/admin/models")).status_code == 403
        assert (await admin.get("/v1/me")).status_code == 200  # the gateway has seen the user
        async with db.begin() as conn:  # admin rights are set server side, never from claims
            await conn.execute(
                text("UPDATE gateway.users SET is_admin = true WHERE user_id = :u"), {"u": admin_id}
            )
        name = "seedream-3"
        before = (await bus.request(c.GET_MODEL, c.GetModelRequest(name=name))).model
        try:
            off = await admin.patch(f"/v1/admin/models/{name}", json={"is_active": False, "sort_order": 999})
            assert off.status_code == 200, off.text
            assert (off.json()["is_active"], off.json()["sort_order"]) == (False, 999)
            unknown = await admin.patch(f"/v1/admin/models/{name}", json={"replicate_id": "x/y"})
            assert unknown.status_code == 422 and "replicate_id" in unknown.text
            everything = {
                m["name"]: m["is_active"] for m in (await admin.get("/v1/admin/models")).json()["data"]
            }
            assert everything[name] is False
            listed = [m["name"] for m in (await api.get("/v1/models")).json()["data"]]
            assert name not in listed
            with pytest.raises(QueryFailed) as bad:
                await bus.request(
                    c.UPDATE_MODEL, c.UpdateModelRequest(name=name, patch=c.ModelPatch(default_width=4096))
                )
            assert (bad.value.code, bad.value.field) == (c.QueryErrorCode.INVALID, "default_width")
            with pytest.raises(QueryFailed) as strength:
                await bus.request(
                    c.UPDATE_MODEL,
                    c.UpdateModelRequest(
                        name=name, patch=c.ModelPatch(default_strength=0.5, strength_min=0.6)
                    ),
                )
            assert (strength.value.code, strength.value.field) == (
                c.QueryErrorCode.INVALID,
                "default_strength",
            )
            with pytest.raises(QueryFailed) as missing:
                await bus.request(c.UPDATE_MODEL, c.UpdateModelRequest(name="nope", patch=c.ModelPatch()))
            assert missing.value.code is c.QueryErrorCode.NOT_FOUND
        finally:
            restored = await bus.request(
                c.UPDATE_MODEL,
                c.UpdateModelRequest(
                    name=name, patch=c.ModelPatch(is_active=before.is_active, sort_order=before.sort_order)
                ),
            )
        assert restored.model == before
        assert name in [m["name"] for m in (await api.get("/v1/models")).json()["data"]]


async def test_record_upload_is_idempotent(bus: Bus) -> None:
    user, image_id = uuid.uuid4(), uuid.uuid4()
    original = c.StoredObject(
        key=f"user-uploads/{user}/{image_id}.webp",
        role="original",
        content_type="image/webp",
        size=100,
        width=32,
        height=32,
        sha256="1" * 64,
    )
    request = c.RecordUploadRequest(image_id=image_id, user_id=user, filename="cat.png", objects=(original,))
    first = await bus.request(c.RECORD_UPLOAD, request)
    again = await bus.request(c.RECORD_UPLOAD, request)
    assert first == again and first.image.generation_id is None
    detail = await bus.request(c.GET_IMAGE_DETAIL, c.GetImageDetailRequest(image_id=image_id, viewer_id=user))
    assert detail.image.prompt == "Uploaded: cat.png"
    with pytest.raises(QueryFailed) as stolen:
        await bus.request(c.RECORD_UPLOAD, request.model_copy(update={"user_id": uuid.uuid4()}))
    assert stolen.value.code is c.QueryErrorCode.CONFLICT
