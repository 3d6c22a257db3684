"""Pieces shared by the three resources: the base model, durations, conditions, references.

Everything here is a pydantic model whose JSON schema also becomes part of the CRDs, so field
names are the camelCase names users write in YAML.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar

import promql_parser
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetJsonSchemaHandler, model_validator
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

__all__ = [
    "SERVICE_URL_PATTERN",
    "at_most",
    "ApiModel",
    "Condition",
    "ConditionStatus",
    "Duration",
    "LocalObjectReference",
    "MlflowSettings",
    "ObjectReference",
    "PromQLTemplate",
    "RegisteredModelName",
    "PrometheusEndpoint",
    "ResourceStatus",
    "SecretKeyReference",
    "PROMQL_PLACEHOLDERS",
    "RULE_ERROR",
    "Rule",
    "format_duration",
    "now_utc",
    "parse_duration",
]


ModelT = TypeVar("ModelT", bound="ApiModel")

#: The pydantic error type of a broken ``Rule``; its context carries the rule's ``field_path``.
RULE_ERROR = "rule"


@dataclass(frozen=True)
class Rule(Generic[ModelT]):
    """A rule spanning fields, declared once for both enforcers: the API server evaluates ``cel``
    (``self`` is the object as stored, camelCase, defaults applied) and pydantic calls ``holds``;
    both refuse with ``message``, at ``field_path`` when one field is to blame."""

    cel: str
    message: str
    holds: Callable[[ModelT], bool]
    field_path: str | None = None

    def validation(self) -> dict[str, str]:
        """The rule as an entry of the CRD's x-kubernetes-validations."""
        entry = {"rule": self.cel, "message": self.message}
        if self.field_path:
            entry["fieldPath"] = self.field_path
        return entry


class ApiModel(BaseModel):
    """Base of every spec and status model: camelCase in YAML, unknown fields refused, ``rules`` enforced."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    rules: ClassVar[tuple[Rule[Any], ...]] = ()

    def to_body(self) -> dict[str, Any]:
        """The model as a Kubernetes body fragment: camelCase keys, no unset optional fields, and
        no NaN or infinity (JSON has none, and the API server refuses a body that holds one)."""
        body: dict[str, Any] = _finite_only(self.model_dump(mode="json", by_alias=True, exclude_none=True))
        return body

    @model_validator(mode="after")
    def _rules_hold(self) -> Self:
        for rule in self.rules:
            if not rule.holds(self):
                # The message goes in as context, so braces in it are never read as placeholders.
                raise PydanticCustomError(RULE_ERROR, "{message}", {"message": rule.message, "field_path": rule.field_path})
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        if cls.rules:
            handler.resolve_ref_schema(schema)["x-kubernetes-validations"] = [rule.validation() for rule in cls.rules]
        return schema


def _finite_only(value: Any) -> Any:
    """``value`` without non-finite numbers: dropped from objects (an unset field), null in lists."""
    if isinstance(value, dict):
        return {k: _finite_only(v) for k, v in value.items() if not _non_finite(v)}
    if isinstance(value, list):
        return [None if _non_finite(v) else _finite_only(v) for v in value]
    return value


def _non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w))+$"
LONGEST_DURATION = timedelta(days=3660)


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus-style duration such as ``30s``, ``5m``, ``1h30m`` or ``7d``."""
    if not isinstance(text, str) or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"invalid duration {text!r}: use a number and a unit (ms, s, m, h, d, w), e.g. 30s, 5m, 1h30m, 7d")
    seconds = sum(int(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be longer than zero")
    if seconds > LONGEST_DURATION.total_seconds():
        # Past this, windows and offsets reach before any data, and dates before year 1.
        raise ValueError(f"invalid duration {text!r}: at most {LONGEST_DURATION.days}d")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest Prometheus duration string for ``delta`` (whole milliseconds)."""
    millis = round(delta.total_seconds() * 1000)
    if millis <= 0:
        raise ValueError("duration must be longer than zero")
    parts = []
    for unit, size in (("w", 604800000), ("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[
    str,
    # The pattern goes to the CRD schema only; here the validator gives the friendlier message.
    Field(description="A duration such as 30s, 5m, 1h30m or 7d.", json_schema_extra={"pattern": DURATION_PATTERN}),
    AfterValidator(_check_duration),
]
"""A duration string validated at load time; ``parse_duration`` turns it into a timedelta."""


RegisteredModelName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        # MLflow's search grammar cannot quote a name holding a quote or a backtick.
        pattern=r"^[^'`]+$",
        description="Name of the registered model in MLflow (no quotes or backticks).",
    ),
]
"""A registered model's name, as MLflow's search filters can quote it."""


PROMQL_PLACEHOLDERS = ("model", "version", "namespace", "window", "selector")
_PROMQL_EXAMPLE = {"model": "m", "version": "1", "namespace": "ns", "window": "5m", "selector": 'model="m"'}


def _check_promql(text: str) -> str:
    names = set()
    for match in string.Template.pattern.finditer(text):
        if match.group("invalid") is not None:
            raise ValueError("invalid PromQL template: a '$' that starts no placeholder (write $$ for a literal dollar)")
        if name := match.group("named") or match.group("braced"):
            names.add(name)
    unknown = names - set(PROMQL_PLACEHOLDERS)
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {sorted(unknown)} in PromQL template; "
            f"known: {', '.join('$' + p for p in PROMQL_PLACEHOLDERS)}"
        )
    # Parsed as the query it will become, with a stand-in for each placeholder: a real parser
    # catches what bracket counting cannot (unknown functions, wrong argument types) and accepts
    # what it wrongly refused (brackets inside label values).
    example = string.Template(text).substitute(_PROMQL_EXAMPLE)
    try:
        promql_parser.parse(example)
    except ValueError as err:
        raise ValueError(f"invalid PromQL: {err}") from None
    return text


PromQLTemplate = Annotated[
    str,
    Field(
        min_length=1,
        description=(
            "PromQL with placeholders $model, $version, $namespace, $window and $selector "
            "(the label matchers of the monitored model)."
        ),
    ),
    AfterValidator(_check_promql),
]


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ApiModel):
    """A metav1.Condition: lastTransitionTime changes only when status flips."""

    type: str = Field(min_length=1, max_length=316, description="Type of condition in CamelCase, e.g. Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Programmatic identifier of the cause of the last transition, in CamelCase.",
    )
    message: str = Field(default="", max_length=32768, description="Human-readable details of the transition.")
    last_transition_time: datetime = Field(description="When status last changed.")
    observed_generation: int | None = Field(default=None, ge=0, description="The spec generation the condition was set from.")


class ResourceStatus(ApiModel):
    """What the status of every kind has: conditions, with Ready summarising, and the generation
    of the spec they were set from."""

    observed_generation: int | None = Field(default=None, description="The spec generation last acted on.")
    conditions: list[Condition] = Field(default_factory=list, description="Current state; Ready summarises.")
    tick_errors: int = Field(
        default=0, ge=0, description="Ticks in a row that ended in an unexpected error (Ready is Unknown with its class)."
    )
    retry_after: datetime | None = Field(
        default=None, description="After an unexpected error, the next tick waits until then (backing off from 5s to 5m)."
    )


class LocalObjectReference(ApiModel):
    """A reference to an object in the resource's own namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the object.")


class ObjectReference(ApiModel):
    """A reference to an object; the namespace defaults to the resource's own."""

    name: str = Field(min_length=1, max_length=253, description="Name of the object.")
    namespace: str | None = Field(default=None, max_length=63, description="Namespace; the resource's own when unset.")


class SecretKeyReference(ApiModel):
    """A key of a Secret in the resource's own namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    key: str = Field(min_length=1, max_length=253, description="Key within the Secret's data.")


#: http(s), a host, an optional path: no user-info (credentials belong in Secrets), no query and
#: no fragment (a '#' would cut off the API path appended to it), no white space.
SERVICE_URL_PATTERN = r"^https?://[^\s/?#@]+(/[^\s?#]*)?$"


def at_most(limit: str) -> Callable[[str], str]:
    """A validator of a duration that must not exceed ``limit``: one slow tenant's timeout bounds
    how long it can hold a shared slot."""

    def check(text: str) -> str:
        if parse_duration(text) > parse_duration(limit):
            raise ValueError(f"at most {limit}")
        return text

    return check


def service_url(what: str) -> Any:
    """An http(s) URL field of a service the operator calls."""
    return Field(
        pattern=SERVICE_URL_PATTERN, max_length=2048, description=f"{what} (http or https; no credentials, query or '#')."
    )


class PrometheusEndpoint(ApiModel):
    """Where to query Prometheus, and how to authenticate."""

    url: str = service_url("Base URL of the Prometheus HTTP API; a path prefix (Thanos, Mimir) is kept")
    timeout: Annotated[Duration, AfterValidator(at_most("1m"))] = Field(
        default="10s", description="Timeout of each query; at most 1m."
    )
    bearer_token_secret: SecretKeyReference | None = Field(default=None, description="A Secret key holding a bearer token.")
    basic_auth_secret: LocalObjectReference | None = Field(
        default=None, description="A Secret with keys `username` and `password`."
    )


class MlflowSettings(ApiModel):
    """The MLflow tracking server that holds the model registry."""

    tracking_uri: str = service_url("MLflow tracking server URI (a local file store would be shared by every tenant)")


def now_utc() -> datetime:
    """The current time, timezone-aware, truncated to seconds as Kubernetes stores it."""
    return datetime.now(UTC).replace(microsecond=0)
