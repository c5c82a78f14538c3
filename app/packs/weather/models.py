"""What ``get_weather`` returns, and the WMO weather codes Open-Meteo reports, in words."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Units = Literal["metric", "imperial"]

ATTRIBUTION = "Weather data by Open-Meteo.com (CC BY 4.0)"

# WMO code table 4677, as Open-Meteo documents the subset it emits.
WMO_CODES: dict[int, str] = {
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "depositing rime fog",
    51: "light drizzle",
    53: "moderate drizzle",
    55: "dense drizzle",
    56: "light freezing drizzle",
    57: "dense freezing drizzle",
    61: "slight rain",
    63: "moderate rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "heavy freezing rain",
    71: "slight snowfall",
    73: "moderate snowfall",
    75: "heavy snowfall",
    77: "snow grains",
    80: "slight rain showers",
    81: "moderate rain showers",
    82: "violent rain showers",
    85: "slight snow showers",
    86: "heavy snow showers",
    95: "thunderstorm",
    96: "thunderstorm with slight hail",
    99: "thunderstorm with heavy hail",
}

_COMPASS = ("N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW")


def describe(code: int | None) -> str:
    if code is None:
        return "unknown"
    return WMO_CODES.get(code, f"unknown (WMO code {code})")


def compass(degrees: float | None) -> str | None:
    if degrees is None:
        return None
    return _COMPASS[round((degrees % 360) / 22.5) % 16]


class Place(BaseModel):
    name: str
    region: str | None = Field(default=None, description="State, province or similar (first-level area).")
    country: str | None = None
    country_code: str | None = None
    latitude: float
    longitude: float
    timezone: str | None = None


class UnitLabels(BaseModel):
    system: Units
    temperature: str = Field(description="e.g. °C or °F")
    wind_speed: str = Field(description="e.g. km/h or mph")
    precipitation: str = Field(description="e.g. mm or inch")


class CurrentConditions(BaseModel):
    time: str | None = Field(default=None, description="Local time of the observation (ISO 8601, no offset).")
    temperature: float | None = None
    apparent_temperature: float | None = Field(default=None, description="Feels-like temperature.")
    relative_humidity_percent: float | None = None
    wind_speed: float | None = None
    wind_direction_degrees: float | None = Field(default=None, description="Where the wind comes from, 0 = north.")
    wind_direction: str | None = Field(default=None, description="The same as a compass point, e.g. 'NW'.")
    weather_code: int | None = Field(default=None, description="WMO weather code.")
    description: str


class DailyForecast(BaseModel):
    date: str = Field(description="Local date (YYYY-MM-DD).")
    temperature_min: float | None = None
    temperature_max: float | None = None
    precipitation: float | None = Field(default=None, description="Total for the day.")
    precipitation_probability_percent: float | None = None
    weather_code: int | None = None
    description: str


class WeatherReport(BaseModel):
    location: Place
    units: UnitLabels
    current: CurrentConditions
    forecast: list[DailyForecast] = Field(description="Today and the next days, one entry per day.")
    as_of: datetime = Field(description="When this answer was fetched from Open-Meteo (UTC).")
    stale: bool = Field(
        default=False,
        description="True when Open-Meteo could not be reached and this is the last good answer (see as_of).",
    )
    stale_reason: str | None = Field(default=None, description="Why a stale answer was served.")
    attribution: str = ATTRIBUTION
