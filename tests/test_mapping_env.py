"""What the mapping actors inherit from the driver's environment."""

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
