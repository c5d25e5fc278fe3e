"""API key and URL resolution (wire-protocol.md "Endpoint and authentication")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import isorun
from isorun import ConfigurationError
from isorun._config import ClientConfig, read_client_file, region_of_key, resolve_config


def resolve(api_key: str | None = None, api_url: str | None = None, **env: str) -> ClientConfig:
    return resolve_config(api_key, api_url, env=env, local=lambda: None)


def test_region_derivation() -> None:
    assert resolve("isorun_live_us_abc_def").api_url == "https://run-us.isorun.ai"
    assert resolve("isorun_live_eu-west_a_b_c").api_url == "https://run-eu-west.isorun.ai"
    assert region_of_key("isorun_live_us_abc") is None
    assert region_of_key("isorun_test_us_abc_def") is None
    assert region_of_key("sk-whatever") is None
    assert region_of_key("isorun_live__abc_def") is None


def test_url_precedence() -> None:
    key = "isorun_live_us_abc_def"
    assert resolve(key, "https://arg.test", ISORUN_API_URL="https://env.test").api_url == (
        "https://arg.test"
    )
    assert resolve(key, ISORUN_API_URL="https://env.test").api_url == "https://env.test"


def test_key_from_env() -> None:
    cfg = resolve(ISORUN_API_KEY="isorun_live_ap_x_y")
    assert cfg == ClientConfig("isorun_live_ap_x_y", "https://run-ap.isorun.ai")
    assert resolve("arg", "http://h", ISORUN_API_KEY="env").api_key == "arg"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("localhost:8080", "https://localhost:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("https://x.test//", "https://x.test/"),
        ("https://x.test/base", "https://x.test/base"),
    ],
)
def test_url_normalisation(given: str, expected: str) -> None:
    assert resolve("k", given).api_url == expected


def test_missing_key_names_argument_env_and_local_runner() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve()
    msg = str(info.value)
    assert "api_key" in msg and "ISORUN_API_KEY" in msg and "isorun serve" in msg
    with pytest.raises(ConfigurationError):
        resolve(api_url="https://x.test")


def test_key_without_region_needs_url() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve("sk-local")
    assert "api_url" in str(info.value) and "ISORUN_API_URL" in str(info.value)


def test_errors_at_client_construction() -> None:
    for cls in (isorun.Isorun, isorun.AsyncIsorun):
        with pytest.raises(ConfigurationError, match="ISORUN_API_KEY"):
            cls()
        with pytest.raises(ConfigurationError, match="ISORUN_API_URL"):
            cls(api_key="no-region")
    assert isinstance(ConfigurationError("x"), isorun.IsorunError)


def test_client_uses_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISORUN_API_KEY", "isorun_live_us_abc_def")
    client = isorun.Isorun()
    assert client.api_url == "https://run-us.isorun.ai"
    assert client.api_key == "isorun_live_us_abc_def"
    client.close()


def write_client_file(directory: Path, url: str, key: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "client.json").write_text(json.dumps({"api_url": url, "api_key": key}))


def test_zero_config_finds_local_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("isorun._config.read_client_file", read_client_file)  # the real one
    write_client_file(tmp_path, "http://127.0.0.1:8787/", "local-key")
    monkeypatch.setenv("ISORUN_STATE_DIR", str(tmp_path))
    client = isorun.Isorun()
    assert (client.api_url, client.api_key) == ("http://127.0.0.1:8787", "local-key")
    client.close()
    # anything configured explicitly switches discovery off
    monkeypatch.setenv("ISORUN_API_KEY", "isorun_live_us_abc_def")
    assert isorun.Isorun().api_url == "https://run-us.isorun.ai"


def test_client_file_search_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write_client_file(second, "http://second", "k2")
    assert read_client_file([first, second]) == ClientConfig("k2", "http://second")
    first.mkdir()
    (first / "client.json").write_text("{not json")
    assert read_client_file([first, second]) == ClientConfig("k2", "http://second")
    write_client_file(first, "http://first", "k1")
    assert read_client_file([first, second]) == ClientConfig("k1", "http://first")
    assert read_client_file([tmp_path / "none"]) is None


def test_unreadable_client_file_skipped(tmp_path: Path) -> None:
    # A client.json that cannot be read (here: a directory, which even root cannot
    # read as a file) is passed over, not an error.
    (tmp_path / "a" / "client.json").mkdir(parents=True)
    write_client_file(tmp_path / "b", "http://b", "k")
    assert read_client_file([tmp_path / "a", tmp_path / "b"]) == ClientConfig("k", "http://b")


def test_state_dir_order(monkeypatch: pytest.MonkeyPatch) -> None:
    from isorun._config import state_dirs

    home = Path("/home/u")
    assert state_dirs({"ISORUN_STATE_DIR": "/s"}, home) == [
        Path("/s"),
        Path("/var/lib/isorun"),
        home / ".local/share/isorun",
    ]
    assert state_dirs({}, home)[0] == Path("/var/lib/isorun")
