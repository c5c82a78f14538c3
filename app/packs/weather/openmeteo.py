"""Open-Meteo's geocoding and forecast APIs through the pack's upstream clients (one per API, each with its breaker).

No key is needed. Each endpoint URL is a setting (``MCPS_WEATHER_GEOCODING_URL``,
``MCPS_WEATHER_FORECAST_URL``), so a self-hosted Open-Meteo or a customer endpoint works too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app.errors import ErrorCode, ServiceError
from app.packs.api import Upstreams
from app.packs.weather.models import (
    CurrentConditions,
    DailyForecast,
    Place,
    UnitLabels,
    Units,
    WeatherReport,
    compass,
    describe,
)
from app.upstream import CircuitBreaker
from app.upstream.errors import unexpected_shape

GEOCODING = "open-meteo-geocoding"
FORECAST = "open-meteo-forecast"
FORECAST_DAYS = 3

CURRENT_VARIABLES = (
    "temperature_2m",
    "relative_humidity_2m",
    "apparent_temperature",
    "weather_code",
    "wind_speed_10m",
    "wind_direction_10m",
)
DAILY_VARIABLES = (
    "weather_code",
    "temperature_2m_max",
    "temperature_2m_min",
    "precipitation_sum",
    "precipitation_probability_max",
)
IMPERIAL_PARAMS = {"temperature_unit": "fahrenheit", "wind_speed_unit": "mph", "precipitation_unit": "inch"}
DEFAULT_LABELS = {
    "metric": {"temperature": "°C", "wind_speed": "km/h", "precipitation": "mm"},
    "imperial": {"temperature": "°F", "wind_speed": "mph", "precipitation": "inch"},
}


def split_endpoint(url: str) -> tuple[str, str]:
    """``https://host/v1/search`` -> (``https://host/v1``, ``search``): a base URL and a relative path."""
    parts = urlsplit(url)
    head, _, tail = parts.path.rpartition("/")
    return urlunsplit((parts.scheme, parts.netloc, head, "", "")), tail


class OpenMeteo:
    def __init__(self, upstreams: Upstreams, geocoding_url: str, forecast_url: str) -> None:
        geocoding_base, self._geocoding_path = split_endpoint(geocoding_url)
        forecast_base, self._forecast_path = split_endpoint(forecast_url)
        self._geocoding = upstreams.client(GEOCODING, geocoding_base)
        self._forecast = upstreams.client(FORECAST, forecast_base)
        self.geocoding_breaker: CircuitBreaker = self._geocoding.breaker
        self.forecast_breaker: CircuitBreaker = self._forecast.breaker

    async def geocode(self, location: str) -> Place:
        response = await self._geocoding.request(
            "GET", self._geocoding_path, params={"name": location, "count": 1, "language": "en", "format": "json"}
        )
        data = response.json()
        results = data.get("results") if isinstance(data, dict) else None
        if not results:
            raise ServiceError(
                ErrorCode.NOT_FOUND,
                f"no place called {location!r} was found. Check the spelling; use a city, town or village name "
                "(e.g. 'Paris'), optionally followed by a comma and a country or region (e.g. 'Paris, France'), "
                "or a postal code.",
                details={"location": location},
            )
        first = results[0] if isinstance(results, list) else None
        if not isinstance(first, dict):
            raise unexpected_shape(GEOCODING)
        try:
            return Place(
                name=first["name"],
                region=first.get("admin1"),
                country=first.get("country"),
                country_code=first.get("country_code"),
                latitude=first["latitude"],
                longitude=first["longitude"],
                timezone=first.get("timezone"),
            )
        except (KeyError, TypeError, ValueError):
            raise unexpected_shape(GEOCODING) from None

    async def forecast(self, place: Place, units: Units) -> WeatherReport:
        params: dict[str, Any] = {
            "latitude": place.latitude,
            "longitude": place.longitude,
            "current": ",".join(CURRENT_VARIABLES),
            "daily": ",".join(DAILY_VARIABLES),
            "timezone": "auto",
            "forecast_days": FORECAST_DAYS,
        }
        if units == "imperial":
            params.update(IMPERIAL_PARAMS)
        data = (await self._forecast.request("GET", self._forecast_path, params=params)).json()
        if not isinstance(data, dict) or not isinstance(data.get("current"), dict):
            raise unexpected_shape(FORECAST)
        try:
            return WeatherReport(
                location=place if place.timezone else place.model_copy(update={"timezone": data.get("timezone")}),
                units=_labels(data, units),
                current=_current(data["current"]),
                forecast=_daily(data.get("daily")),
                as_of=datetime.now(UTC),
            )
        except (KeyError, TypeError, ValueError):
            raise unexpected_shape(FORECAST) from None


def _labels(data: dict[str, Any], units: Units) -> UnitLabels:
    given = data.get("current_units")
    given = given if isinstance(given, dict) else {}
    defaults = DEFAULT_LABELS[units]

    def label(variable: str, key: str) -> str:
        value = given.get(variable)
        return value if isinstance(value, str) and value else defaults[key]

    daily = data.get("daily_units")
    precipitation = daily.get("precipitation_sum") if isinstance(daily, dict) else None
    return UnitLabels(
        system=units,
        temperature=label("temperature_2m", "temperature"),
        wind_speed=label("wind_speed_10m", "wind_speed"),
        precipitation=precipitation if isinstance(precipitation, str) and precipitation else defaults["precipitation"],
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _code(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _current(current: dict[str, Any]) -> CurrentConditions:
    code = _code(current.get("weather_code"))
    direction = _number(current.get("wind_direction_10m"))
    time = current.get("time")
    return CurrentConditions(
        time=time if isinstance(time, str) else None,
        temperature=_number(current.get("temperature_2m")),
        apparent_temperature=_number(current.get("apparent_temperature")),
        relative_humidity_percent=_number(current.get("relative_humidity_2m")),
        wind_speed=_number(current.get("wind_speed_10m")),
        wind_direction_degrees=direction,
        wind_direction=compass(direction),
        weather_code=code,
        description=describe(code),
    )


def _daily(daily: Any) -> list[DailyForecast]:
    if not isinstance(daily, dict) or not isinstance(daily.get("time"), list):
        return []

    def column(name: str, index: int) -> Any:
        values = daily.get(name)
        return values[index] if isinstance(values, list) and index < len(values) else None

    days: list[DailyForecast] = []
    for index, date in enumerate(daily["time"][:FORECAST_DAYS]):
        code = _code(column("weather_code", index))
        days.append(
            DailyForecast(
                date=str(date),
                temperature_min=_number(column("temperature_2m_min", index)),
                temperature_max=_number(column("temperature_2m_max", index)),
                precipitation=_number(column("precipitation_sum", index)),
                precipitation_probability_percent=_number(column("precipitation_probability_max", index)),
                weather_code=code,
                description=describe(code),
            )
        )
    return days
