"""Reading a job's parameters (``driver-config-values`` and its kin). Pure: no I/O.

CDM sends a job's parameters as ``{"configs": [{"name": "schedulerConfig", "inputs":
[{"name": "schedulerConfig.disposableType", "value": "DELETE"}, ...]}, ...]}``, every
value a string. These functions flatten that into ``{input name: value}`` and type the
inputs a waiter needs (:class:`~cdm_status._definition.JobSettings`).

They are lenient on purpose: the parameters only refine what a watch concludes, so a
piece of an odd shape (a config that is not an object, an input without a name, a value
that is a number) is skipped or converted, never an error that would end a watch. An
enum string this library does not know is typed ``OTHER`` and kept as sent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ._definition import DisposableType, JobEndpoint, JobSettings, RetryType

__all__ = [
    "DISPOSABLE_INPUT",
    "RETRY_INPUT",
    "SCHEDULED_INPUT",
    "config_inputs",
    "endpoint",
    "parse_settings",
]

DISPOSABLE_INPUT = "schedulerConfig.disposableType"
RETRY_INPUT = "retryJobConfig.retryJobType"
SCHEDULED_INPUT = "schedulerConfig.isSchedulerJob"


def _text(value: Any) -> str | None:
    """A value as CDM would have sent it as a string; None for what is no scalar."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    return None


def config_inputs(value: Any) -> Mapping[str, str]:
    """Every input of a ``*-config-values`` object, by its full name (``config.input``).

    An input named without its config's prefix gets it; a later input of the same name
    wins; anything not of the documented shape is skipped.
    """
    inputs: dict[str, str] = {}
    configs = value.get("configs") if isinstance(value, Mapping) else None
    if not isinstance(configs, list | tuple):
        return MappingProxyType(inputs)
    for config in configs:
        if not isinstance(config, Mapping):
            continue
        prefix = config.get("name")
        items = config.get("inputs")
        if not isinstance(items, list | tuple):
            continue
        for item in items:
            if not isinstance(item, Mapping):
                continue
            name, text = item.get("name"), _text(item.get("value"))
            if not isinstance(name, str) or not name or text is None:
                continue
            if "." not in name and isinstance(prefix, str) and prefix:
                name = f"{prefix}.{name}"
            inputs[name] = text
    return MappingProxyType(inputs)


def _boolean(text: str | None) -> bool | None:
    if text is None:
        return None
    return {"true": True, "false": False}.get(text.strip().lower())


def parse_settings(value: Any) -> JobSettings | None:
    """The settings in a ``driver-config-values`` object; None when there is none."""
    if value is None:
        return None
    inputs = config_inputs(value)
    disposable = inputs.get(DISPOSABLE_INPUT)
    retry = inputs.get(RETRY_INPUT)
    return JobSettings(
        disposable=DisposableType.parse(disposable),
        raw_disposable=disposable,
        retry=RetryType.parse(retry),
        raw_retry=retry,
        scheduled=_boolean(inputs.get(SCHEDULED_INPUT)),
        raw=inputs,
    )


def endpoint(job: Mapping[str, Any], side: str) -> JobEndpoint:
    """The source (``side="from"``) or destination (``"to"``) of a job object."""
    link = job.get(f"{side}-link-name")
    connector = job.get(f"{side}-connector-name")
    return JobEndpoint(
        link_name=link if isinstance(link, str) else None,
        connector_name=connector if isinstance(connector, str) else None,
        raw=config_inputs(job.get(f"{side}-config-values")),
    )
