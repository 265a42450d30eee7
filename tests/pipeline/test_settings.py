"""Settings come from arguments, ORCH_* variables and a TOML file, in that order."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.settings import Settings


def test_defaults_run_on_one_machine_unconfigured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("ORCH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # a fresh machine: no ./var yet
    settings = Settings()
    assert settings.resolved_database_url.endswith("var/orchestrator.db")
    assert settings.resolved_redis_url == "redis://127.0.0.1:6399/0"
    assert settings.uses_local_redis
    assert settings.queue == "hv.local"


def test_environment_overrides_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "orchestrator.toml"
    config.write_text('[orchestrator]\nhypervisor = "kvm-a"\napi_port = 9000\n')
    monkeypatch.setenv("ORCH_CONFIG_FILE", str(config))
    monkeypatch.setenv("ORCH_API_PORT", "9100")
    settings = Settings()
    assert settings.hypervisor == "kvm-a"
    assert settings.api_port == 9100


def test_time_limits_must_stay_below_the_visibility_timeout() -> None:
    with pytest.raises(ValidationError, match="visibility_timeout"):
        Settings(visibility_timeout=100, task_time_limit=100, task_soft_time_limit=50)


def test_a_hypervisor_name_that_is_not_a_queue_name_is_refused() -> None:
    with pytest.raises(ValidationError, match="hypervisor"):
        Settings(hypervisor="a b/c")


def test_uploads_by_path_come_only_from_var_images_and_the_configured_directories(
    tmp_path: Path,
) -> None:
    # Not the rest of var_dir: it holds the fleet's SSH keys, the database and other uploads.
    settings = Settings(var_dir=tmp_path, upload_source_dirs=[tmp_path / "srv"])
    assert settings.allowed_upload_dirs == [tmp_path / "images", tmp_path / "srv"]
    assert Settings(var_dir=tmp_path).allowed_upload_dirs == [tmp_path / "images"]
