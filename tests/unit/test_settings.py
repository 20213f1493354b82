"""One way to read the environment for every process: a malformed value names its variable,
the shared settings read alike everywhere, and the internal secret falls back to JWT_SECRET."""

from __future__ import annotations

import pytest

from booking.settings import Settings
from common.settings import Env
from gateway.settings import GatewaySettings
from workers.settings import WorkerSettings

SECRET = "s" * 40
SHARED = {
    "REDIS_URL": "redis://10.0.0.1:6379/3",
    "DATABASE_URL": "postgresql://u@10.0.0.2/db",
    "KAFKA_BOOTSTRAP": "10.0.0.3:9092",
    "KAFKA_IDEMPOTENCE": "yes",
    "KAFKA_NAMESPACE": "ns",
    "LOG_LEVEL": "DEBUG",
    "JWT_SECRET": SECRET,
}


def test_every_service_reads_the_shared_settings_alike() -> None:
    for settings in (
        Settings.from_env(SHARED),
        WorkerSettings.from_env(SHARED),
        GatewaySettings.from_env(SHARED),
    ):
        assert settings.redis_url == "redis://10.0.0.1:6379/3"
        assert settings.database_url == "postgresql://u@10.0.0.2/db"
        assert settings.kafka_bootstrap == "10.0.0.3:9092"
        assert settings.kafka_idempotence is True
        assert settings.kafka_namespace == "ns"
        assert settings.log_level == "DEBUG"


def test_a_malformed_value_is_refused_naming_its_variable() -> None:
    cases: list[tuple[type[Settings | WorkerSettings | GatewaySettings], dict[str, str], str]] = [
        (Settings, {"HOLD_TTL_S": "ten"}, "HOLD_TTL_S"),
        (Settings, {"HOLD_TTL_S": "0"}, "HOLD_TTL_S"),
        (WorkerSettings, {"WORKER_INTERVAL_S": "soon"}, "WORKER_INTERVAL_S"),
        (WorkerSettings, {"KAFKA_IDEMPOTENCE": "maybe"}, "KAFKA_IDEMPOTENCE"),
        (GatewaySettings, {"GATEWAY_PORT": "80a"}, "GATEWAY_PORT"),
        (GatewaySettings, {"RATE_LIMIT_PER_IP": "many"}, "RATE_LIMIT_PER_IP"),
        (Settings, {"MOCK_PAYMENT_DELAY_S": "x"}, "MOCK_PAYMENT_DELAY_S"),
    ]
    for settings, env, variable in cases:
        with pytest.raises(ValueError, match=variable):
            settings.from_env({**SHARED, **env})


def test_the_internal_secret_falls_back_to_the_jwt_secret() -> None:
    assert Env({"JWT_SECRET": "a"}).internal_secret() == "a"
    assert Env({"JWT_SECRET": "a", "INTERNAL_SECRET": "b"}).internal_secret() == "b"
    assert WorkerSettings.from_env({"JWT_SECRET": SECRET}).internal_secret == SECRET
    assert Settings.from_env({"JWT_SECRET": SECRET}).internal_secret == SECRET
    with pytest.raises(ValueError, match="INTERNAL_SECRET"):
        Settings.from_env({"JWT_SECRET": SECRET, "INTERNAL_SECRET": "short"})
