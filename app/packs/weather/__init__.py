"""The weather pack: current conditions and a short forecast from Open-Meteo (no API key).

``MCPS_PACKS=weather``. Settings: ``MCPS_WEATHER_GEOCODING_URL``, ``MCPS_WEATHER_FORECAST_URL``,
``MCPS_WEATHER_CACHE_SECONDS`` (answers are shared by every caller for this long),
``MCPS_WEATHER_STALE_SECONDS`` (how long the last good answer may stand in during an outage; 0
turns the fallback off). Scope: ``weather:read``.
"""

from __future__ import annotations

from app.packs.api import Pack, PackContext
from app.packs.weather.openmeteo import OpenMeteo
from app.packs.weather.settings import WeatherSettings
from app.packs.weather.tools import register_tools


def setup(context: PackContext[WeatherSettings]) -> None:
    settings = context.settings
    register_tools(context, OpenMeteo(context.upstreams, settings.geocoding_url, settings.forecast_url))


pack = Pack("weather", setup, settings=WeatherSettings)
