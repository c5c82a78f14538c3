"""``get_weather``: current conditions and a short forecast, with the last good answer as a declared fallback."""

from __future__ import annotations

import json
import math
import re
from typing import Annotated

from mcp.types import CallToolResult, TextContent
from pydantic import AfterValidator, Field

from app.errors import ErrorCode, ServiceError
from app.packs.api import PackContext
from app.packs.weather.models import Units, WeatherReport
from app.packs.weather.openmeteo import FORECAST_DAYS, OpenMeteo
from app.packs.weather.settings import WeatherSettings
from app.policy import META_KEY
from app.upstream.stale import LastGoodStore, Outcome

DEFAULT_RETRY_SECONDS = 30  # what to suggest when the upstream did not say how long to wait

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _location(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Location = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        description="A place name, optionally with a country or region after a comma ('Paris', "
        "'Paris, France', 'Springfield, Illinois'), or a postal code.",
    ),
    AfterValidator(_location),
]


def normalize(location: str) -> str:
    """The same place however it is typed: case and runs of spaces do not make another answer."""
    return " ".join(location.split()).casefold()


def register_tools(pack: PackContext[WeatherSettings], meteo: OpenMeteo) -> None:
    settings = pack.settings
    store = LastGoodStore(pack.cache, "weather", ttl_seconds=settings.stale_seconds)

    @pack.tool(
        "get_weather",
        title="Current weather and 3-day forecast",
        description=(
            "Get the current weather and a short forecast for a place, from Open-Meteo.\n"
            "Inputs: location (a city, town or village name, optionally followed by a comma and a country or "
            "region, e.g. 'Paris, France'; or a postal code; 1-100 characters); units: 'metric' (°C, km/h, mm; "
            "default) or 'imperial' (°F, mph, inch).\n"
            f"Returns: the place found (first match: name, region, country, coordinates, time zone); current "
            "conditions (temperature, feels-like temperature, humidity, wind speed and direction, a description "
            f"such as 'light drizzle'); a {FORECAST_DAYS}-day forecast starting today (min/max temperature, "
            "precipitation, description); as_of (when fetched). When Open-Meteo is down the last good answer is "
            "returned with stale=true; check as_of before relying on it.\n"
            "Do not use it for past weather, hourly detail, forecasts beyond 3 days, or air quality. An unknown "
            "place is NOT_FOUND: retry with a better-known name or add the country."
        ),
        scopes=("weather:read",),
        read_only=True,
        open_world=True,
        cache_ttl_seconds=settings.cache_seconds,
        cache_public=True,  # the weather is the same whoever asks
        # Two upstream calls (geocode, forecast), each bounded by the upstream total timeout, then the fallback.
        timeout_seconds=max(pack.service.default_tool_timeout_seconds, 2 * pack.upstreams.total_timeout_seconds + 5),
    )
    async def get_weather(location: Location, units: Units = "metric") -> Annotated[CallToolResult, WeatherReport]:
        async def fetch() -> WeatherReport:
            place = await meteo.geocode(location.strip())
            return await meteo.forecast(place, units)

        key = (normalize(location), units)
        try:
            outcome = await store.fetch_or_recall(key, fetch, WeatherReport)
        except ServiceError as exc:
            if not exc.spec.upstream_down:
                raise  # the question is wrong (unknown place, refused input): no old answer fixes that
            raise _no_fallback(location, exc) from None
        return _result(outcome)


def _result(outcome: Outcome[WeatherReport]) -> CallToolResult:
    # as_of is the store's one timestamp for this answer, so a stale copy says exactly when it was fresh.
    report = outcome.value.model_copy(update={"as_of": outcome.as_of})
    marks: dict[str, object] = {}
    if outcome.stale:
        reason = outcome.error.message if outcome.error is not None else "the upstream is unavailable"
        minutes = math.ceil(outcome.age_seconds / 60)
        report = report.model_copy(
            update={"stale": True, "stale_reason": f"{reason}; this is the last good answer, about {minutes} min old"}
        )
        marks = {"stale": True, "as_of": outcome.as_of.isoformat()}
    structured = report.model_dump(mode="json")
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(structured, ensure_ascii=False))],
        structured_content=structured,
        _meta={META_KEY: marks} if marks else None,
    )


def _no_fallback(location: str, cause: ServiceError) -> ServiceError:
    """The upstream failed and there is no earlier answer: say what else the caller can do."""
    wait_ms = cause.retry_after_ms if cause.retry_after_ms is not None else DEFAULT_RETRY_SECONDS * 1000
    wait = max(1, math.ceil(wait_ms / 1000))
    return ServiceError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        f"weather data is unavailable right now ({cause.text}) and there is no earlier answer for "
        f"{location!r} to fall back on. Retry in about {wait} s; meanwhile, check a weather website or app "
        "(e.g. open-meteo.com or the national weather service for that country) for current conditions.",
        retryable=True,
        retry_after_ms=wait_ms,
        details={
            **cause.details,
            "cause": cause.error_code.value,
            "alternatives": ["retry later", "a weather website or app", "the national weather service"],
        },
    )
