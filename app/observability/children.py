"""`Children`: a metric's label children remembered by their label values (a kept hot-path special case).

The plain path is ``metric.labels(*values)``, and it returns the very same child object:
prometheus_client keeps one child per label tuple, but finding it again re-validates and converts
every value to ``str`` and takes the metric's lock, on each of the several metric updates of every
request. Here a dict keyed by the values' tuple returns it directly; it is filled only through
``labels``, so it holds exactly the children the metric holds (bounded as the label values are: by
the callers, who map anything a client sends to a fixed set). docs/performance.md, "Hot-path
special cases: kept or removed", has what it saves per request.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

Child = TypeVar("Child", covariant=True)


class Labelled(Protocol[Child]):
    """What prometheus_client's `Counter`, `Gauge` and `Histogram` offer: ``labels(*values)``."""

    def labels(self, *labelvalues: str) -> Child: ...


C = TypeVar("C")


class Children(Generic[C]):
    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Labelled[C]) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], C] = {}

    def get(self, *values: str) -> C:
        """The child for ``values``: what ``metric.labels(*values)`` returns."""
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child
