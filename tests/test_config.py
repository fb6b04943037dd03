"""axis/config.py: loading, overrides, path resolution and errors that name key and file."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import date
from pathlib import Path

import pytest

from axis.config import Config, ConfigError, load

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "axis.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_empty_file_gives_the_defaults_with_paths_under_its_folder(tmp_path: Path) -> None:
    config = load(write(tmp_path, ""), env={})

    assert config.hub.name == "axis-hub"
    assert config.router.batch_size == 250
    assert config.hub.archive_dir == tmp_path / "archive"
    assert config.database.url == f"sqlite:///{tmp_path.resolve() / 'axis.db'}"
    assert config.source == tmp_path / "axis.toml"


def test_relative_paths_resolve_against_the_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "hub"
    folder.mkdir()
    path = write(
        folder,
        '[signing]\nkey = "keys/hub.key"\n[trust]\nanchors = ["pki/ca.pem", "/etc/ca.pem"]\n'
        '[database]\nurl = "sqlite:///data/axis.db"\n',
    )
    monkeypatch.chdir(tmp_path)

    config = load(path, env={})

    assert config.signing.key == folder.resolve() / "keys/hub.key"
    assert config.trust.anchors == (folder.resolve() / "pki/ca.pem", Path("/etc/ca.pem"))
    assert config.database.url == f"sqlite:///{folder.resolve() / 'data/axis.db'}"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///a.db"\n[router]\nbatch_size = 10\n')

    config = load(
        path,
        env={
            "AXIS_DATABASE_URL": "postgresql+psycopg://axis@db/axis",
            "AXIS_ROUTER_BATCH_SIZE": "500",
            "AXIS_ROUTER_BATCH_WAIT_MS": "0.5",
        },
    )

    assert config.database.url == "postgresql+psycopg://axis@db/axis"
    assert config.router.batch_size == 500
    assert config.router.batch_wait_ms == 0.5


def test_environment_list_is_comma_separated(tmp_path: Path) -> None:
    config = load(write(tmp_path, ""), env={"AXIS_TRUST_ANCHORS": "/a/ca1.pem, rel/ca2.pem,"})

    assert config.trust.anchors == (Path("/a/ca1.pem"), tmp_path.resolve() / "rel/ca2.pem")


def test_axis_config_variable_selects_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[hub]\nname = "hub-from-env"\n')
    monkeypatch.setenv("AXIS_CONFIG", str(path))

    assert load(env={}).hub.name == "hub-from-env"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[hubb]\nname = 'x'\n", "hubb"),
        ("[hub]\nnmae = 'x'\n", "hub.nmae"),
        ("[router]\nbatch_size = 'many'\n", "router.batch_size"),
        ("[router]\nbatch_size = true\n", "router.batch_size"),
        ("[hub]\nname = 3\n", "hub.name"),
        ("[trust]\nanchors = 'one.pem'\n", "trust.anchors"),
        ("[router]\nbatch_size = 0\n", "router.batch_size"),
        ("[router]\nworkers = 65\n", "router.workers"),
        ("[log]\nformat = 'xml'\n", "log.format"),
        ("hub = 1\n", "hub"),
    ],
)
def test_bad_values_name_the_key_and_the_file(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as err:
        load(path, env={})

    assert err.value.key == key
    assert key in str(err.value)
    assert str(path) in str(err.value)


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, ""), env={"AXIS_ROUTER_PREFETCH": "lots"})

    assert err.value.key == "router.prefetch"
    assert "AXIS_ROUTER_PREFETCH" in str(err.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[hub\n")

    with pytest.raises(ConfigError, match="not valid TOML") as err:
        load(path, env={})

    assert str(path) in str(err.value)


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="axis init") as err:
        load(tmp_path / "nope.toml", env={})

    assert "nope.toml" in str(err.value)


def test_secret_comes_from_its_file_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "broker").write_text("s3cret\n")
    path = write(
        tmp_path,
        '[broker]\npassword = "inline"\npassword_file = "secrets/broker"\n'
        '[management]\npassword = "mgmt-inline"\n',
    )

    config = load(path, env={})

    assert config.broker.secret() == "s3cret"
    assert config.management.secret() == "mgmt-inline"
    assert "s3cret" not in repr(config)


def test_unreadable_secret_file_is_a_config_error(tmp_path: Path) -> None:
    config = load(write(tmp_path, '[broker]\npassword_file = "missing"\n'), env={})

    with pytest.raises(ConfigError, match="missing"):
        config.broker.secret()


def test_empty_optional_path_means_unset(tmp_path: Path) -> None:
    config = load(write(tmp_path, '[broker]\ntls_ca_file = ""\n'), env={})

    assert config.broker.tls_ca_file is None


def test_example_file_documents_every_key_and_loads(tmp_path: Path) -> None:
    example = REPO / "config.example.toml"
    raw = tomllib.loads(example.read_text(encoding="utf-8"))
    for section in dataclasses.fields(Config):
        if section.name == "source":
            continue
        keys = {f.name for f in dataclasses.fields(getattr(Config(), section.name))}
        assert set(raw[section.name]) == keys, section.name

    config = load(example, env={})

    assert config.router == Config().router
    assert config.log == Config().log


def test_legacy_profile_until_is_a_date_from_the_file_or_the_environment(tmp_path: Path) -> None:
    assert load(write(tmp_path, ""), env={}).signing.legacy_profile_until is None
    path = write(tmp_path, '[signing]\nlegacy_profile_until = "2027-07-01"\n')
    assert load(path, env={}).signing.legacy_profile_until == date(2027, 7, 1)
    native = write(tmp_path, "[signing]\nlegacy_profile_until = 2027-07-01\n")
    assert load(native, env={}).signing.legacy_profile_until == date(2027, 7, 1)
    overridden = load(path, env={"AXIS_SIGNING_LEGACY_PROFILE_UNTIL": "2026-12-31"})
    assert overridden.signing.legacy_profile_until == date(2026, 12, 31)
    # Empty means never, in the file and as an override of the file.
    empty = write(tmp_path, '[signing]\nlegacy_profile_until = ""\n')
    assert load(empty, env={}).signing.legacy_profile_until is None
    cleared = load(path, env={"AXIS_SIGNING_LEGACY_PROFILE_UNTIL": ""})
    assert cleared.signing.legacy_profile_until is None


@pytest.mark.parametrize(
    "value", ['"2027-02-30"', '"01/07/2027"', '"20270701"', "2027-07-01T00:00:00", "20270701"]
)
def test_a_bad_legacy_profile_until_names_the_key_and_the_file(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"[signing]\nlegacy_profile_until = {value}\n")

    with pytest.raises(ConfigError, match="YYYY-MM-DD") as err:
        load(path, env={})

    assert err.value.key == "signing.legacy_profile_until"
    assert "signing.legacy_profile_until" in str(err.value)
    assert str(path) in str(err.value)


def test_a_bad_legacy_profile_until_in_the_environment_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, ""), env={"AXIS_SIGNING_LEGACY_PROFILE_UNTIL": "soon"})

    assert err.value.key == "signing.legacy_profile_until"
    assert "AXIS_SIGNING_LEGACY_PROFILE_UNTIL" in str(err.value)
