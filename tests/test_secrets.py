"""Secrets stay out of logs, out of URLs and off the terminal when asked.

- :func:`axis.logs.redact_secrets`, the structlog processor every process of the hub
  runs: values under secret-sounding keys, PEM private keys and URL passwords never
  reach the rendered log line (JSON or console, tracebacks included);
- the configuration refuses credentials inside ``broker.url`` and takes the password
  from ``password_file`` or ``AXIS_BROKER_PASSWORD`` instead;
- ``axis agency add/import/reset-password --secrets-dir DIR`` write each new AMQP
  password to ``DIR/<CODE>.amqp-password`` (0600) and print none.

That ``axis serve`` and the folder bridge keep the password out of their logs and
their command lines is proven on running processes in ``tests/hub/test_serve_secrets.py``.
"""

from __future__ import annotations

import csv
import json
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest
import structlog
from click.testing import CliRunner, Result

from axis import logs
from axis.admin import Admin
from axis.broker.testing import BrokerEnv
from axis.config import ConfigError, from_mapping
from axis.hubdir import init_hub
from cli import main
from signing.pki import generate_key, issue, key_pem

SECRET = "s3cr3t-Hunter2-xyz"


# The structlog processor, through the real configuration and renderers.


@pytest.fixture
def configured() -> Iterator[Callable[[str], None]]:
    """``configure(fmt)`` for this test, the earlier structlog set-up restored after."""
    saved = structlog.get_config()
    yield lambda fmt: logs.configure(fmt, "debug")
    structlog.configure(**saved)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_secret_keys_private_keys_and_url_passwords_never_reach_the_log_line(
    configured: Callable[[str], None], capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    configured(fmt)
    pem = key_pem(generate_key()).decode()
    log = structlog.get_logger("test")

    log.debug(
        "connect",
        password=SECRET,
        amqp_password=SECRET,
        **{"management-password": SECRET, "api_token": SECRET, "client_secret": SECRET},
        url=f"amqps://axis-hub:{SECRET}@broker.example:5671/",
        key=pem,
        nested={"broker": {"password": SECRET}, "urls": [f"http://u:{SECRET}@h/"]},
        code="000.00.00.G22",
    )
    try:
        raise RuntimeError(f"cannot open amqp://axis-hub:{SECRET}@127.0.0.1/ with\n{pem}")
    except RuntimeError:
        log.exception("router.loop_failed")

    err = capsys.readouterr().err
    assert SECRET not in err
    assert "PRIVATE KEY" not in err
    assert pem.splitlines()[1] not in err
    # What is not secret is still there, so the log stays useful.
    assert "000.00.00.G22" in err
    assert "broker.example:5671" in err and "axis-hub:" in err
    assert "router.loop_failed" in err and "RuntimeError" in err
    if fmt == "json":
        first = json.loads(err.splitlines()[0])
        assert first["password"] == first["api_token"] == logs.REDACTED
        assert first["url"] == f"amqps://axis-hub:{logs.REDACTED}@broker.example:5671/"


def test_the_standard_library_logging_is_redacted_too() -> None:
    # In a process of its own: pytest's log capture owns this one's root handlers.
    script = (
        "import logging; from axis import logs; logs.configure('json', 'debug'); "
        f"logging.getLogger('some.library').warning('retrying %s', 'amqp://u:{SECRET}@h:5672/')"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    assert "retrying amqp://u:" in done.stderr and SECRET not in done.stderr


@pytest.mark.parametrize(
    "key",
    ["password", "amqp_password", "PASSWORD_FILE_CONTENT", "Secret", "x-api-key", "token"],
)
def test_secret_sounding_keys_are_recognised(key: str) -> None:
    assert logs.is_secret_key(key)


@pytest.mark.parametrize(
    "key", ["code", "document_id", "receipt_id", "sha256", "fingerprint", "key", "passes"]
)
def test_ordinary_keys_are_left_alone(key: str) -> None:
    assert not logs.is_secret_key(key)
    event: dict[str, Any] = {key: "amqp://127.0.0.1:5672/ plain"}
    assert logs.redact_secrets(None, "info", event) == {key: "amqp://127.0.0.1:5672/ plain"}


def test_redact_text_leaves_urls_without_passwords_as_they_are() -> None:
    for text in (
        "amqp://127.0.0.1:5672/",
        "amqps://user@host/",
        "postgresql+psycopg://axis@db.example:5432/axis",
        "mailto:user@example.com",
        "a: b@c",
    ):
        assert logs.redact_text(text) == text
    assert (
        logs.redact_text("postgresql+psycopg://axis:pw@db/axis")
        == f"postgresql+psycopg://axis:{logs.REDACTED}@db/axis"
    )


# Configuration: the password comes from a file or the environment, never the URL.


def broker_config(broker: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    return from_mapping({"broker": broker}, base_dir=Path("/nonexistent"), env=env or {})


def test_a_broker_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as caught:
        broker_config({"url": f"amqp://axis-hub:{SECRET}@127.0.0.1:5672/"})
    assert caught.value.key == "broker.url"
    assert "password_file" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_the_broker_password_comes_from_its_file_or_the_environment(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(SECRET + "\n")
    from_file = broker_config({"password_file": str(tmp_path / "pw")})
    from_env = broker_config({}, env={"AXIS_BROKER_PASSWORD": SECRET})

    assert from_file.broker.secret() == from_env.broker.secret() == SECRET
    # The configuration object itself does not carry the file's content.
    assert SECRET not in repr(from_file)


def test_an_unreadable_password_file_names_the_file_not_a_secret(tmp_path: Path) -> None:
    config = broker_config({"password_file": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="missing"):
        config.broker.secret()


# axis agency ... --secrets-dir


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, broker: BrokerEnv) -> tuple[Path, BrokerEnv]:
    """A hub folder made by init_hub with a vhost of its own: (axis.toml, BrokerEnv)."""
    env = broker.derive("secrets")
    config = init_hub(
        tmp_path_factory.mktemp("secrets") / "hub",
        vhost=env.vhost,
        management_url=broker.management_url,
        management_user=broker.admin_user,
        management_password=broker.admin_password,
        hub_name=f"hub-secrets-{broker.user_tag}",
        user_tags=[broker.user_tag],
    )
    return config, env


@pytest.fixture(autouse=True)
def tag_agency_users(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Agency users made through the CLI carry the session tag, so teardown deletes them."""
    if "hub" not in request.fixturenames:
        return
    broker: BrokerEnv = request.getfixturevalue("broker")
    original = Admin.from_config.__func__  # type: ignore[attr-defined]

    def from_config(cls: type[Admin], config: object, *, user_tags: object = ()) -> Admin:
        return original(cls, config, user_tags=[broker.user_tag])

    monkeypatch.setattr(Admin, "from_config", classmethod(from_config))


@pytest.fixture
def axis(hub: tuple[Path, BrokerEnv]) -> Callable[..., Result]:
    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(hub[0]), *args])

    return run


def can_log_in(env: BrokerEnv, user: str, password: str) -> bool:
    try:
        pika.BlockingConnection(pika.URLParameters(env.amqp_url_for(user, password))).close()
    except pika.exceptions.ProbableAuthenticationError:
        return False
    return True


def password_in(path: Path) -> str:
    """The password file's content, after checking it is the owner's alone."""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and text.count("\n") == 1
    return text.strip()


def test_add_with_secrets_dir_writes_a_0600_file_per_agency_and_prints_no_password(
    axis: Callable[..., Result], hub: tuple[Path, BrokerEnv], broker: BrokerEnv, tmp_path: Path
) -> None:
    code = broker.unique_code("SEC1")
    cert = issue(code, ca_dir=hub[0].parent / "pki", out_dir=tmp_path).cert_path
    secrets_dir = tmp_path / "handover" / "secrets"

    result = axis(
        "agency",
        "add",
        code,
        "--name",
        "Sở A",
        "--cert",
        str(cert),
        "--secrets-dir",
        str(secrets_dir),
    )

    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    password = password_in(secrets_dir / f"{code}.amqp-password")
    assert password not in result.stdout + result.stderr
    assert str(secrets_dir / f"{code}.amqp-password") in result.stdout
    assert can_log_in(hub[1], code, password)
    assert [p.name for p in secrets_dir.iterdir()] == [f"{code}.amqp-password"]


def test_add_json_with_secrets_dir_names_the_file_instead_of_the_password(
    axis: Callable[..., Result], hub: tuple[Path, BrokerEnv], broker: BrokerEnv, tmp_path: Path
) -> None:
    code = broker.unique_code("SEC2")
    cert = issue(code, ca_dir=hub[0].parent / "pki", out_dir=tmp_path).cert_path

    result = axis(
        "agency",
        "add",
        code,
        "--name",
        "Sở B",
        "--cert",
        str(cert),
        "--json",
        "--secrets-dir",
        str(tmp_path / "s"),
    )

    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == {
        "code": code,
        "amqp_user": code,
        "amqp_password_file": str(tmp_path / "s" / f"{code}.amqp-password"),
    }
    assert can_log_in(hub[1], code, password_in(Path(printed["amqp_password_file"])))


def test_import_with_secrets_dir_writes_one_file_per_new_agency(
    axis: Callable[..., Result], hub: tuple[Path, BrokerEnv], broker: BrokerEnv, tmp_path: Path
) -> None:
    codes = [broker.unique_code(f"IMP{n}") for n in range(3)]
    with (tmp_path / "agencies.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["code", "name", "name_en", "kind"])
        for code in codes:
            writer.writerow([code, f"Sở {code}", "", "province"])
    secrets_dir = tmp_path / "secrets"

    result = axis(
        "agency",
        "import",
        str(tmp_path / "agencies.csv"),
        "--certs",
        str(tmp_path / "certs"),
        "--issue-missing",
        "--ca",
        str(hub[0].parent / "pki"),
        "--secrets-dir",
        str(secrets_dir),
    )

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in secrets_dir.iterdir()) == sorted(
        f"{code}.amqp-password" for code in codes
    )
    for code in codes:
        password = password_in(secrets_dir / f"{code}.amqp-password")
        assert password not in result.stdout + result.stderr
        assert can_log_in(hub[1], code, password)


def test_reset_password_with_secrets_dir_replaces_the_file(
    axis: Callable[..., Result], hub: tuple[Path, BrokerEnv], broker: BrokerEnv, tmp_path: Path
) -> None:
    code = broker.unique_code("SEC3")
    cert = issue(code, ca_dir=hub[0].parent / "pki", out_dir=tmp_path).cert_path
    secrets_dir = tmp_path / "s"
    axis(
        "agency", "add", code, "--name", "C", "--cert", str(cert), "--secrets-dir", str(secrets_dir)
    )
    first = password_in(secrets_dir / f"{code}.amqp-password")

    result = axis("agency", "reset-password", code, "--secrets-dir", str(secrets_dir))

    assert result.exit_code == 0, result.output
    second = password_in(secrets_dir / f"{code}.amqp-password")
    assert second != first and second not in result.stdout
    assert not can_log_in(hub[1], code, first)
    assert can_log_in(hub[1], code, second)
    assert [p.name for p in secrets_dir.iterdir()] == [f"{code}.amqp-password"]


def test_an_unwritable_secrets_dir_stops_before_anything_is_registered(
    axis: Callable[..., Result], hub: tuple[Path, BrokerEnv], broker: BrokerEnv, tmp_path: Path
) -> None:
    code = broker.unique_code("SEC4")
    cert = issue(code, ca_dir=hub[0].parent / "pki", out_dir=tmp_path).cert_path
    (tmp_path / "a-file").write_text("")

    result = axis(
        "agency",
        "add",
        code,
        "--name",
        "D",
        "--cert",
        str(cert),
        "--secrets-dir",
        str(tmp_path / "a-file" / "secrets"),
    )

    assert result.exit_code == 1
    assert "cannot create" in result.stderr
    assert axis("agency", "show", code).exit_code == 1, "nothing was registered"
