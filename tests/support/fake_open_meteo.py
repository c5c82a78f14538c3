"""A fake Open-Meteo (geocoding + forecast) on loopback, answering in the APIs' recorded shapes.

Shapes follow open-meteo.com's documentation examples: ``/v1/search`` returns ``{"results": [...],
"generationtime_ms": ...}`` (no ``results`` key when nothing matches); ``/v1/forecast`` returns the
``current``/``current_units`` and ``daily``/``daily_units`` blocks for the variables asked for, in
the units asked for. Places are looked up by the ``name`` parameter; forecasts are derived from the
coordinates, so a test can tell places apart.

``outage`` replaces every forecast answer (a 503, a slow reply, a dropped connection) until cleared.
"""

from __future__ import annotations

from typing import Any

from tests.support.fake_http import FakeHTTPServer, Recorded, Reply

GEOCODING_PATH = "/v1/search"
FORECAST_PATH = "/v1/forecast"

PLACES: dict[str, dict[str, Any]] = {
    "berlin": {
        "id": 2950159,
        "name": "Berlin",
        "latitude": 52.52437,
        "longitude": 13.41053,
        "elevation": 74.0,
        "feature_code": "PPLC",
        "country_code": "DE",
        "admin1_id": 2950157,
        "admin3_id": 6547383,
        "admin4_id": 6547539,
        "timezone": "Europe/Berlin",
        "population": 3426354,
        "postcodes": ["10967", "13347"],
        "country_id": 2921044,
        "country": "Germany",
        "admin1": "Land Berlin",
        "admin3": "Berlin, Stadt",
        "admin4": "Berlin",
    },
    "paris": {
        "id": 2988507,
        "name": "Paris",
        "latitude": 48.85341,
        "longitude": 2.3488,
        "elevation": 42.0,
        "feature_code": "PPLC",
        "country_code": "FR",
        "admin1_id": 3012874,
        "admin2_id": 2968815,
        "timezone": "Europe/Paris",
        "population": 2138551,
        "country_id": 3017382,
        "country": "France",
        "admin1": "Île-de-France",
        "admin2": "Paris",
    },
    "madrid": {
        "id": 3117735,
        "name": "Madrid",
        "latitude": 40.4165,
        "longitude": -3.70256,
        "elevation": 667.0,
        "feature_code": "PPLC",
        "country_code": "ES",
        "admin1_id": 3117732,
        "timezone": "Europe/Madrid",
        "population": 3255944,
        "country_id": 2510769,
        "country": "Spain",
        "admin1": "Madrid",
    },
    "rome": {
        "id": 3169070,
        "name": "Rome",
        "latitude": 41.89193,
        "longitude": 12.51133,
        "elevation": 20.0,
        "feature_code": "PPLC",
        "country_code": "IT",
        "timezone": "Europe/Rome",
        "population": 2318895,
        "country_id": 3175395,
        "country": "Italy",
        "admin1": "Lazio",
    },
    "oslo": {
        "id": 3143244,
        "name": "Oslo",
        "latitude": 59.91273,
        "longitude": 10.74609,
        "elevation": 26.0,
        "feature_code": "PPLC",
        "country_code": "NO",
        "timezone": "Europe/Oslo",
        "population": 580000,
        "country_id": 3144096,
        "country": "Norway",
        "admin1": "Oslo",
    },
    "vienna": {
        "id": 2761369,
        "name": "Vienna",
        "latitude": 48.20849,
        "longitude": 16.37208,
        "elevation": 171.0,
        "feature_code": "PPLC",
        "country_code": "AT",
        "timezone": "Europe/Vienna",
        "population": 1691468,
        "country_id": 2782113,
        "country": "Austria",
        "admin1": "Vienna",
    },
}


def geocoding_json(name: str) -> dict[str, Any]:
    place = PLACES.get(name.split(",")[0].strip().casefold())
    if place is None:
        return {"generationtime_ms": 0.41}
    return {"results": [place], "generationtime_ms": 0.83}


def forecast_json(latitude: float, longitude: float, *, imperial: bool = False) -> dict[str, Any]:
    """A forecast whose temperature is derived from the latitude (so places differ), in the asked units."""
    celsius = round(30 - latitude / 2, 1)

    def temp(value: float) -> float:
        return round(value * 9 / 5 + 32, 1) if imperial else round(value, 1)

    def wind(kmh: float) -> float:
        return round(kmh / 1.609, 1) if imperial else kmh

    def rain(mm: float) -> float:
        return round(mm / 25.4, 3) if imperial else mm

    t_unit = "°F" if imperial else "°C"
    return {
        "latitude": round(latitude, 2),
        "longitude": round(longitude, 2),
        "generationtime_ms": 0.0940561294555664,
        "utc_offset_seconds": 3600,
        "timezone": "Europe/Berlin",
        "timezone_abbreviation": "GMT+1",
        "elevation": 38.0,
        "current_units": {
            "time": "iso8601",
            "interval": "seconds",
            "temperature_2m": t_unit,
            "relative_humidity_2m": "%",
            "apparent_temperature": t_unit,
            "weather_code": "wmo code",
            "wind_speed_10m": "mp/h" if imperial else "km/h",
            "wind_direction_10m": "°",
        },
        "current": {
            "time": "2025-01-15T14:00",
            "interval": 900,
            "temperature_2m": temp(celsius),
            "relative_humidity_2m": 81,
            "apparent_temperature": temp(round(celsius - 3.2, 1)),
            "weather_code": 61,
            "wind_speed_10m": wind(14.8),
            "wind_direction_10m": 247,
        },
        "daily_units": {
            "time": "iso8601",
            "weather_code": "wmo code",
            "temperature_2m_max": t_unit,
            "temperature_2m_min": t_unit,
            "precipitation_sum": "inch" if imperial else "mm",
            "precipitation_probability_max": "%",
        },
        "daily": {
            "time": ["2025-01-15", "2025-01-16", "2025-01-17"],
            "weather_code": [61, 3, 0],
            "temperature_2m_max": [temp(celsius + 2), temp(celsius + 1), temp(celsius + 3)],
            "temperature_2m_min": [temp(celsius - 4), temp(celsius - 5), temp(celsius - 6)],
            "precipitation_sum": [rain(4.2), rain(0.0), rain(0.0)],
            "precipitation_probability_max": [87, 12, 3],
        },
    }


class FakeOpenMeteo:
    def __init__(self) -> None:
        self.http = FakeHTTPServer()
        self.outage: Reply | None = None  # replaces every forecast answer while set
        self.geocoding_outage: Reply | None = None

    def start(self) -> FakeOpenMeteo:
        self.http.start()
        self.http.route(GEOCODING_PATH, self._geocode, method="GET")
        self.http.route(FORECAST_PATH, self._forecast, method="GET")
        return self

    def stop(self) -> None:
        self.http.stop()

    def __enter__(self) -> FakeOpenMeteo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def geocoding_url(self) -> str:
        return self.http.url(GEOCODING_PATH)

    @property
    def forecast_url(self) -> str:
        return self.http.url(FORECAST_PATH)

    def geocoding_requests(self) -> list[Recorded]:
        return self.http.requests_to(GEOCODING_PATH)

    def forecast_requests(self) -> list[Recorded]:
        return self.http.requests_to(FORECAST_PATH)

    def _geocode(self, request: Recorded) -> Reply:
        if self.geocoding_outage is not None:
            return self.geocoding_outage
        name = request.param("name")
        if not name:
            return Reply.json({"error": True, "reason": "Parameter 'name' is required"}, 400)
        return Reply.json(geocoding_json(name))

    def _forecast(self, request: Recorded) -> Reply:
        if self.outage is not None:
            return self.outage
        try:
            latitude = float(request.param("latitude") or "")
            longitude = float(request.param("longitude") or "")
        except ValueError:
            return Reply.json({"error": True, "reason": "Latitude must be in range of -90 to 90°."}, 400)
        imperial = request.param("temperature_unit") == "fahrenheit"
        return Reply.json(forecast_json(latitude, longitude, imperial=imperial))


def unavailable() -> Reply:
    return Reply.json({"error": True, "reason": "Service Unavailable"}, 503)
