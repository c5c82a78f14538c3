"""A parsed /metrics scrape, for exact before/after deltas."""

from __future__ import annotations

import httpx2
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


class Scrape:
    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[str, dict[Labels, float]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = float(sample.value)

    def series(self, name: str) -> list[tuple[dict[str, str], float]]:
        """Every sample of ``name``: (labels, value)."""
        return [(dict(labels), value) for labels, value in self.samples.get(name, {}).items()]

    def value(self, name: str, **labels: str) -> float:
        """The one sample of ``name`` with exactly these labels (0 when absent)."""
        return self.samples.get(name, {}).get(frozenset(labels.items()), 0.0)

    def delta(self, before: Scrape, name: str, **labels: str) -> float:
        return self.value(name, **labels) - before.value(name, **labels)


def scrape(base_url: str, token: str | None = None) -> Scrape:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx2.get(f"{base_url}/metrics", headers=headers, timeout=10)
    response.raise_for_status()
    return Scrape(response.text)
