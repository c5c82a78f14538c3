"""The weather pack's settings (``MCPS_WEATHER_*``)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from app.packs.api import PackSettings
from app.settings import http_url


class WeatherSettings(PackSettings):
    model_config = SettingsConfigDict(env_prefix="MCPS_WEATHER_")

    geocoding_url: str = Field(
        "https://geocoding-api.open-meteo.com/v1/search", description="Open-Meteo geocoding endpoint."
    )
    forecast_url: str = Field("https://api.open-meteo.com/v1/forecast", description="Open-Meteo forecast endpoint.")
    cache_seconds: float = Field(600, gt=0, description="How long an answer is fresh (shared by every caller).")
    stale_seconds: float = Field(
        86_400, ge=0, description="How long a last good answer may be served (marked stale) in an outage; 0: never."
    )

    @field_validator("geocoding_url", "forecast_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)
