"""What the mapping actors inherit from the driver's environment: settings, never secrets."""

from __future__ import annotations

from deepsalt.mapping.pipeline import ACTOR_GDAL_CACHEMAX_MB, forwarded_env


def test_actors_get_a_bounded_gdal_cache_by_default(monkeypatch):
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    monkeypatch.setenv("AWS_S3_ENDPOINT", "127.0.0.1:9000")
    monkeypatch.setenv("HOME_UNRELATED", "x")
    env = forwarded_env()
    assert env["GDAL_CACHEMAX"] == str(ACTOR_GDAL_CACHEMAX_MB) == "256"
    assert env["AWS_S3_ENDPOINT"] == "127.0.0.1:9000"
    assert "HOME_UNRELATED" not in env


def test_the_drivers_gdal_cachemax_wins(monkeypatch):
    monkeypatch.setenv("GDAL_CACHEMAX", "1024")
    assert forwarded_env()["GDAL_CACHEMAX"] == "1024"


def test_credentials_are_never_forwarded_but_where_to_find_them_is(monkeypatch):
    secrets = {
        "AWS_ACCESS_KEY_ID": "AKIA-sentinel",
        "AWS_SECRET_ACCESS_KEY": "sentinel-secret",
        "AWS_SESSION_TOKEN": "sentinel-token",
        "GDAL_HTTP_USERPWD": "user:sentinel",
        "GDAL_HTTP_HEADERS": "Authorization: Bearer sentinel",
        "AZURE_STORAGE_ACCESS_KEY": "sentinel-azure",
    }
    pointers = {
        "AWS_PROFILE": "mapping",
        "AWS_SHARED_CREDENTIALS_FILE": "/home/user/.aws/credentials",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_DEFAULT_REGION": "eu-central-1",
    }
    for key, value in {**secrets, **pointers}.items():
        monkeypatch.setenv(key, value)
    env = forwarded_env()
    assert not set(secrets) & set(env)
    assert not any("sentinel" in value for value in env.values())
    assert {key: env[key] for key in pointers} == pointers
