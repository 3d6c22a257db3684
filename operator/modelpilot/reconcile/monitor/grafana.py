"""Typed models of the Grafana dashboard JSON (schemaVersion 39, Grafana 10.4 and later): the
part of it modelpilot's dashboards use, with unknown fields refused so a typo cannot pass.

Small models of our own rather than PyPI's ``grafana-foundation-sdk``: that package is a public
preview whose releases are epoch-stamped regenerations per Grafana version (``<stamp>!11.6.0``),
replaced every few weeks, with no stable API to pin to.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, SerializerFunctionWrapHandler, model_serializer
from pydantic.alias_generators import to_camel

__all__ = [
    "GRID_WIDTH",
    "SCHEMA_VERSION",
    "Annotation",
    "Annotations",
    "Dashboard",
    "DataSourceRef",
    "FieldConfig",
    "FieldDefaults",
    "GridPos",
    "Panel",
    "PanelType",
    "Target",
    "TemplateVariable",
    "Templating",
    "ThresholdStep",
    "Thresholds",
    "TimeRange",
    "Transformation",
]

SCHEMA_VERSION = 39
GRID_WIDTH = 24

PanelType = Literal["row", "timeseries", "stat", "gauge", "table"]


class GrafanaModel(BaseModel):
    """camelCase keys as Grafana writes them; unknown keys refused; immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return body


class DataSourceRef(GrafanaModel):
    type: str = "prometheus"
    uid: str = "${datasource}"


class GridPos(GrafanaModel):
    """Where a panel sits: 24 columns wide, ``h`` in rows of 30 px."""

    x: int = Field(ge=0, lt=GRID_WIDTH)
    y: int = Field(ge=0)
    w: int = Field(gt=0, le=GRID_WIDTH)
    h: int = Field(gt=0)


class Target(GrafanaModel):
    """One PromQL query of a panel."""

    ref_id: str = Field(min_length=1)
    expr: str = Field(min_length=1)
    legend_format: str | None = None
    datasource: DataSourceRef = Field(default_factory=DataSourceRef)
    # A stat, gauge or table shows the value now: an instant query. A time series: a range query.
    instant: bool = False
    range: bool = True
    format: Literal["time_series", "table"] = "time_series"


class ThresholdStep(GrafanaModel):
    """A colour from ``value`` up; the first step's value is null (minus infinity)."""

    color: str
    value: float | None = None

    @model_serializer(mode="wrap")
    def _with_null_base(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Grafana writes the base step as "value": null; dropping it with the other unset fields
        # would leave a step without a value.
        return {**handler(self), "value": self.value}


class Thresholds(GrafanaModel):
    mode: Literal["absolute", "percentage"] = "absolute"
    steps: tuple[ThresholdStep, ...] = Field(min_length=1)


class FieldDefaults(GrafanaModel):
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    thresholds: Thresholds | None = None
    color: dict[str, JsonValue] | None = None
    mappings: tuple[dict[str, JsonValue], ...] | None = None
    # Panel-type settings: line style, stacking, and how thresholds are drawn (thresholdsStyle).
    custom: dict[str, JsonValue] | None = None


class FieldConfig(GrafanaModel):
    defaults: FieldDefaults = Field(default_factory=FieldDefaults)
    overrides: tuple[dict[str, JsonValue], ...] = ()


class Transformation(GrafanaModel):
    id: str
    options: dict[str, JsonValue] = Field(default_factory=dict)


class Panel(GrafanaModel):
    id: int = Field(gt=0)
    type: PanelType
    title: str
    grid_pos: GridPos
    description: str | None = None
    datasource: DataSourceRef | None = None
    targets: tuple[Target, ...] = ()
    field_config: FieldConfig | None = None
    options: dict[str, JsonValue] | None = None
    transformations: tuple[Transformation, ...] | None = None
    # Rows only: a row is never collapsed, so the panels under it stay at the top level.
    collapsed: bool | None = None
    panels: tuple[Panel, ...] | None = None


class Annotation(GrafanaModel):
    """An annotation query: Grafana's built-in one, or PromQL whose series become time regions."""

    name: str
    datasource: DataSourceRef
    enable: bool = True
    hide: bool = False
    icon_color: str = "red"
    built_in: int | None = None
    type: str | None = None
    expr: str | None = None
    step: str | None = None
    title_format: str | None = None
    text_format: str | None = None
    tag_keys: str | None = None
    use_value_for_time: bool | None = None


class Annotations(GrafanaModel):
    list: tuple[Annotation, ...] = ()


class TemplateVariable(GrafanaModel):
    name: str
    type: Literal["datasource", "query", "constant", "custom"]
    query: str
    label: str | None = None
    datasource: DataSourceRef | None = None
    definition: str | None = None
    hide: int = 0
    refresh: int | None = None
    multi: bool | None = None
    include_all: bool | None = None
    all_value: str | None = None
    sort: int | None = None
    regex: str | None = None


class Templating(GrafanaModel):
    list: tuple[TemplateVariable, ...] = ()


class TimeRange(GrafanaModel):
    from_: str = Field(alias="from")
    to: str = "now"


class Dashboard(GrafanaModel):
    uid: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    title: str
    description: str | None = None
    tags: tuple[str, ...] = ()
    timezone: str = "browser"
    editable: bool = False
    graph_tooltip: int = 1  # a shared crosshair across panels
    schema_version: int = Field(default=SCHEMA_VERSION, ge=SCHEMA_VERSION)
    version: int = 1
    refresh: str = "1m"
    time: TimeRange
    templating: Templating = Field(default_factory=Templating)
    annotations: Annotations = Field(default_factory=Annotations)
    panels: tuple[Panel, ...] = ()
