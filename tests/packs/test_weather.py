"""The weather pack against a fake Open-Meteo (real HTTP on loopback), through the real service and the SDK client.

Each test uses its own place, so the guard chain's shared cache (weather is cached for everyone)
never hides one test's calls from another; the outage tests set the fake's ``outage`` and clear it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult

from app.policy import META_KEY
from tests.conftest import ServiceFactory
from tests.support.fake_http import Reply, unused_port
from tests.support.fake_open_meteo import FakeOpenMeteo, unavailable
from tests.support.service import ServiceProcess

pytestmark = pytest.mark.anyio

ATTEMPTS = 2


def service_env(fake: FakeOpenMeteo, **extra: str) -> dict[str, str]:
    return {
        "MCPS_PACKS": "github,weather",
        "MCPS_GITHUB_API_URL": f"http://127.0.0.1:{unused_port()}",
        "MCPS_WEATHER_GEOCODING_URL": fake.geocoding_url,
        "MCPS_WEATHER_FORECAST_URL": fake.forecast_url,
        "MCPS_RATE_LIMIT_CAPACITY": "100000",
        "MCPS_UPSTREAM_CONNECT_TIMEOUT_SECONDS": "1",
        "MCPS_UPSTREAM_READ_TIMEOUT_SECONDS": "1",
        "MCPS_UPSTREAM_TOTAL_TIMEOUT_SECONDS": "2",
        "MCPS_UPSTREAM_MAX_ATTEMPTS": str(ATTEMPTS),
        "MCPS_BREAKER_FAILURE_THRESHOLD": "1000",
        **extra,
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenMeteo]:
    with FakeOpenMeteo() as meteo:
        yield meteo


@pytest.fixture
def outage(fake: FakeOpenMeteo) -> Iterator[FakeOpenMeteo]:
    """The fake, with whatever outage a test sets cleared afterwards."""
    yield fake
    fake.outage = fake.geocoding_outage = None


@pytest.fixture(scope="module")
def service(fake: FakeOpenMeteo, module_service_factory: ServiceFactory) -> ServiceProcess:
    return module_service_factory(service_env(fake))


async def weather(service: ServiceProcess, location: str, mode: str = "legacy", **arguments: Any) -> CallToolResult:
    async with Client(service.mcp_url, mode=mode) as client:
        return await client.call_tool("get_weather", {"location": location, **arguments})


def ok(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error is False, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error(result: CallToolResult, code: str) -> dict[str, Any]:
    assert result.is_error is True
    body = result.structured_content
    assert isinstance(body, dict), result.content
    assert body["code"] == code, body
    return body


def asked_for(fake: FakeOpenMeteo, name: str) -> int:
    return sum(1 for r in fake.geocoding_requests() if r.param("name") == name)


def forecasts_at(fake: FakeOpenMeteo, latitude: str) -> int:
    return sum(1 for r in fake.forecast_requests() if r.param("latitude") == latitude)


async def test_tool_is_listed_read_only_and_open_world(service: ServiceProcess) -> None:
    async with Client(service.mcp_url, mode="legacy") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    tool = tools["get_weather"]
    assert tool.annotations is not None
    assert (tool.annotations.read_only_hint, tool.annotations.open_world_hint) == (True, True)
    assert tool.input_schema["properties"]["location"]["maxLength"] == 100
    assert tool.input_schema["properties"]["units"]["enum"] == ["metric", "imperial"]
    assert tool.output_schema is not None
    assert {"stale", "as_of", "current", "forecast"} <= tool.output_schema["properties"].keys()


async def test_current_conditions_and_forecast(service: ServiceProcess, fake: FakeOpenMeteo) -> None:
    report = ok(await weather(service, "Berlin"))
    assert report["location"] == {
        "name": "Berlin",
        "region": "Land Berlin",
        "country": "Germany",
        "country_code": "DE",
        "latitude": 52.52437,
        "longitude": 13.41053,
        "timezone": "Europe/Berlin",
    }
    assert report["units"] == {"system": "metric", "temperature": "°C", "wind_speed": "km/h", "precipitation": "mm"}
    current = report["current"]
    assert current["temperature"] == 3.7
    assert current["apparent_temperature"] == 0.5
    assert current["relative_humidity_percent"] == 81
    assert (current["wind_speed"], current["wind_direction_degrees"], current["wind_direction"]) == (14.8, 247, "WSW")
    assert (current["weather_code"], current["description"]) == (61, "slight rain")
    assert [day["date"] for day in report["forecast"]] == ["2025-01-15", "2025-01-16", "2025-01-17"]
    assert [day["description"] for day in report["forecast"]] == ["slight rain", "overcast", "clear sky"]
    assert report["forecast"][0]["temperature_min"] == -0.3
    assert report["forecast"][0]["temperature_max"] == 5.7
    assert report["forecast"][0]["precipitation"] == 4.2
    assert report["stale"] is False
    assert datetime.fromisoformat(report["as_of"]).tzinfo is not None
    assert "Open-Meteo" in report["attribution"]

    geocode = next(r for r in fake.geocoding_requests() if r.param("name") == "Berlin")
    assert (geocode.param("count"), geocode.param("language"), geocode.param("format")) == ("1", "en", "json")
    forecast = next(r for r in fake.forecast_requests() if r.param("latitude") == "52.52437")
    assert forecast.param("longitude") == "13.41053"
    assert forecast.param("timezone") == "auto"
    assert forecast.param("forecast_days") == "3"
    assert "temperature_2m" in (forecast.param("current") or "")
    assert "precipitation_sum" in (forecast.param("daily") or "")
    assert forecast.param("temperature_unit") is None


async def test_imperial_units(service: ServiceProcess, fake: FakeOpenMeteo) -> None:
    report = ok(await weather(service, "Paris", units="imperial"))
    assert report["units"]["system"] == "imperial"
    assert report["units"]["temperature"] == "°F"
    sent = [r for r in fake.forecast_requests() if r.param("latitude") == "48.85341"][-1]
    assert (sent.param("temperature_unit"), sent.param("wind_speed_unit"), sent.param("precipitation_unit")) == (
        "fahrenheit",
        "mph",
        "inch",
    )
    assert report["current"]["temperature"] == round(round(30 - 48.85341 / 2, 1) * 9 / 5 + 32, 1)


async def test_answers_are_cached_for_everyone(service: ServiceProcess, fake: FakeOpenMeteo) -> None:
    first = ok(await weather(service, "Vienna"))
    again = await weather(service, "Vienna")
    assert ok(again) == first
    assert again.meta is not None
    assert again.meta[META_KEY]["cache"] == "hit"
    assert asked_for(fake, "Vienna") == 1
    assert forecasts_at(fake, "48.20849") == 1


async def test_unknown_place_is_not_found_with_advice(service: ServiceProcess, fake: FakeOpenMeteo) -> None:
    forecasts = len(fake.forecast_requests())
    body = error(await weather(service, "Atlantis"), "NOT_FOUND")
    assert "Atlantis" in body["message"]
    assert "spelling" in body["message"]
    assert body["retryable"] is False
    assert asked_for(fake, "Atlantis") == 1
    assert len(fake.forecast_requests()) == forecasts


@pytest.mark.parametrize("location", ["", "   ", "x" * 101, "Ber\x00lin", "Berlin\n"])
async def test_bad_locations_are_rejected_before_any_request(
    service: ServiceProcess, fake: FakeOpenMeteo, location: str
) -> None:
    before = len(fake.http.requests)
    error(await weather(service, location), "VALIDATION_ERROR")
    error(await weather(service, "Berlin", units="kelvin"), "VALIDATION_ERROR")
    assert len(fake.http.requests) == before


async def test_outage_serves_the_last_good_answer_marked_stale(service: ServiceProcess, outage: FakeOpenMeteo) -> None:
    fresh = ok(await weather(service, "Madrid"))
    assert fresh["stale"] is False
    before = forecasts_at(outage, "40.4165")

    outage.outage = unavailable()
    # Another spelling of the same place misses the guard chain's cache but shares the last good answer.
    result = await weather(service, "  MADRID ")
    stale = ok(result)
    assert stale["stale"] is True
    assert stale["as_of"] == fresh["as_of"]
    assert "unavailable" in stale["stale_reason"]
    assert stale["current"] == fresh["current"]
    assert stale["forecast"] == fresh["forecast"]
    assert result.meta is not None
    assert result.meta[META_KEY]["stale"] is True
    assert forecasts_at(outage, "40.4165") == before + ATTEMPTS  # retried before falling back

    outage.outage = None
    outage.geocoding_outage = unavailable()  # the first step failing falls back the same way
    assert ok(await weather(service, "madrid"))["stale"] is True


async def test_slow_upstream_falls_back_to_the_last_good_answer(service: ServiceProcess, outage: FakeOpenMeteo) -> None:
    fresh = ok(await weather(service, "Oslo"))
    outage.outage = Reply.json({}, delay=10)
    stale = ok(await weather(service, "oslo"))
    assert stale["stale"] is True
    assert stale["as_of"] == fresh["as_of"]
    assert "did not answer" in stale["stale_reason"]


async def test_outage_without_a_last_good_answer_says_what_to_do(
    service: ServiceProcess, outage: FakeOpenMeteo
) -> None:
    outage.outage = unavailable()
    body = error(await weather(service, "Rome"), "UPSTREAM_UNAVAILABLE")
    assert body["retryable"] is True
    assert body["retry_after_ms"] > 0
    assert "no earlier answer" in body["message"]
    assert "Retry in about" in body["message"]
    assert "weather website" in body["message"]
    assert body["details"]["cause"] == "UPSTREAM_UNAVAILABLE"
    assert body["details"]["upstream"] == "open-meteo-forecast"
    assert body["details"]["alternatives"]


async def test_open_breaker_serves_stale_without_calling_open_meteo(
    service_factory: ServiceFactory, outage: FakeOpenMeteo
) -> None:
    service = service_factory(
        service_env(outage, MCPS_BREAKER_FAILURE_THRESHOLD=str(ATTEMPTS), MCPS_BREAKER_OPEN_SECONDS="60")
    )
    fresh = ok(await weather(service, "Rome", units="imperial"))
    outage.outage = unavailable()
    first = ok(await weather(service, "rome", units="imperial"))  # these failures open the breaker
    assert first["stale"] is True
    seen = len(outage.forecast_requests())

    second = ok(await weather(service, "ROME", units="imperial"))
    assert second["stale"] is True
    assert second["as_of"] == fresh["as_of"]
    assert "circuit breaker" in second["stale_reason"]
    assert len(outage.forecast_requests()) == seen  # failed fast: Open-Meteo never saw it

    ready = httpx2.get(f"{service.base_url}/health/ready").json()
    upstreams = next(check for check in ready["checks"] if check["name"] == "upstreams")
    states = {breaker["name"]: breaker["state"] for breaker in upstreams["breakers"]}
    assert states["open-meteo-forecast"] == "open"
    assert states["open-meteo-geocoding"] == "closed"

    nothing = error(await weather(service, "Vienna", units="imperial"), "UPSTREAM_UNAVAILABLE")
    assert nothing["details"]["breaker"] == "open"
    assert 0 < nothing["retry_after_ms"] <= 60_000
