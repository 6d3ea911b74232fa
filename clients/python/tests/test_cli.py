"""The command line in-process, against a fake gateway: exit codes, messages, output."""

from __future__ import annotations

import io
import json
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from picture_client_fakes import GENERATION_ID, generation_json

from picture.client import Picture, RetryPolicy, cli, models
from picture.client._config import load_config

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[Handler], None]:
    monkeypatch.setenv("PICTURE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("PICTURE_TOKEN", raising=False)

    def install(handler: Handler) -> None:
        def client(args: object) -> Picture:
            return Picture(
                "tok",
                base_url="http://picture.test",
                transport=httpx.MockTransport(handler),
                sleep=lambda _: None,
                retry=RetryPolicy(max_retries=1),
            )

        monkeypatch.setattr(cli, "_client", client)

    return install


def problem(status: int, detail: str, **extra: object) -> dict[str, object]:
    return {
        "type": "https://picture.dev/problems/x",
        "title": "t",
        "status": status,
        "detail": detail,
        **extra,
    }


def test_a_failed_generation_exits_1_with_json_on_stdout(
    gateway: Callable[[Handler], None], capsys: pytest.CaptureFixture[str]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, json=generation_json("queued"))
        if request.url.path.endswith("/events"):
            return httpx.Response(503, json=problem(503, "no live updates"))
        body = generation_json("failed")
        body["error_message"] = "the model refused"
        return httpx.Response(200, json=body)

    gateway(handler)
    code = cli.main(["generate", "a cat", "--model", "flux-schnell", "--json"])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_FAILED
    assert json.loads(out)["status"] == "failed"  # stdout: JSON only
    assert "the model refused" in err


def test_quota_reached_exits_5_and_says_when_it_resets(
    gateway: Callable[[Handler], None], capsys: pytest.CaptureFixture[str]
) -> None:
    gateway(
        lambda request: httpx.Response(
            429,
            json=problem(429, "hourly generation limit reached (1 an hour)", limit_reason="hourly"),
            headers={"Retry-After": "1200"},
        )
    )
    code = cli.main(["generate", "a cat", "--model", "flux-schnell"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_RATE_LIMITED
    assert "quota reached: hourly generation limit reached (1 an hour); resets at 20" in err


@pytest.mark.parametrize(
    ("status", "detail", "code", "message"),
    [
        (401, "token expired", cli.EXIT_AUTH, "your token expired, run picture login"),
        (401, "invalid token", cli.EXIT_AUTH, "run picture login"),
        (404, "generation not found", cli.EXIT_NOT_FOUND, "not found: generation not found"),
        (409, "already finished", cli.EXIT_FAILED, "conflict: already finished"),
        (500, "boom", cli.EXIT_SERVER, "boom"),
    ],
)
def test_errors_map_to_documented_exit_codes(
    gateway: Callable[[Handler], None],
    capsys: pytest.CaptureFixture[str],
    status: int,
    detail: str,
    code: int,
    message: str,
) -> None:
    gateway(lambda request: httpx.Response(status, json=problem(status, detail)))
    assert cli.main(["status", GENERATION_ID]) == code
    assert message in capsys.readouterr().err


def test_usage_errors_exit_2(gateway: Callable[[Handler], None], capsys: pytest.CaptureFixture[str]) -> None:
    gateway(lambda request: httpx.Response(500))
    with pytest.raises(SystemExit) as bad_size:
        cli.main(["generate", "a cat", "--model", "flux-schnell", "--size", "big"])
    assert bad_size.value.code == cli.EXIT_USAGE
    assert cli.main(["generate", "a cat", "--model", "flux-schnell", "--size", "9000x512"]) == cli.EXIT_USAGE
    assert "body.width" in capsys.readouterr().err


def test_progress_prints_one_plain_line_per_change_when_not_a_tty() -> None:
    stream = io.StringIO()
    with cli.ProgressLine(stream) as progress:
        for status, position in [("queued", 3), ("queued", 3), ("queued", 2), ("processing", None)]:
            body = generation_json(status, queue_position=position)
            progress.update(models.GenerationOut.model_validate(body))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert "queue position 3" in lines[0] and "queue position 2" in lines[1] and "processing" in lines[2]
    assert all("elapsed" in line for line in lines) and "\r" not in stream.getvalue()


def test_login_stores_the_token_readable_by_the_owner_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PICTURE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("PICTURE_BASE_URL", "http://127.0.0.1:9")  # nothing listens: not checked
    assert cli.main(["login", "--token", "secret-token"]) == cli.EXIT_OK
    path = tmp_path / "config" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config()["token"] == "secret-token"
    assert "not reachable" in capsys.readouterr().out
