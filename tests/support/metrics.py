"""Read one sample from a /metrics scrape, so tests can assert exact deltas."""

from __future__ import annotations

import httpx2
from prometheus_client.parser import text_string_to_metric_families


def sample(base_url: str, name: str, **labels: str) -> float:
    text = httpx2.get(f"{base_url}/metrics").text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0
