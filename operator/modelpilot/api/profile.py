"""The reference profile: a model version's training data as counts, stored with it in MLflow.

Numerical features are counted in the same buckets the model server's `model_feature_value`
histogram uses (``upperBounds``, finite; ``counts`` has one more entry, the +Inf bucket), so a
profile compares with Prometheus data bucket for bucket; categorical features by category.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Final, Literal

from pydantic import Field, model_validator

from .common import ApiModel

__all__ = ["PROFILE_FORMAT", "CategoricalProfile", "NumericalProfile", "ReferenceProfile"]

PROFILE_FORMAT: Final = "modelpilot.dev/profile/v1"


class NumericalProfile(ApiModel):
    kind: Literal["numerical"] = "numerical"
    upper_bounds: list[float] = Field(min_length=1)
    counts: list[float]
    missing: int = 0

    @model_validator(mode="after")
    def _shape(self) -> NumericalProfile:
        if len(self.counts) != len(self.upper_bounds) + 1:
            raise ValueError("counts needs one entry per upper bound plus one for +Inf")
        if any(b <= a for a, b in pairwise(self.upper_bounds)):
            raise ValueError("upperBounds must be strictly increasing")
        return self


class CategoricalProfile(ApiModel):
    kind: Literal["categorical"] = "categorical"
    counts: dict[str, float]
    missing: int = 0


class ReferenceProfile(ApiModel):
    format: Literal["modelpilot.dev/profile/v1"] = PROFILE_FORMAT
    rows: int = Field(ge=0)
    features: dict[str, Annotated[NumericalProfile | CategoricalProfile, Field(discriminator="kind")]]
    predictions: dict[str, float] = Field(default_factory=dict, description="Predicted class counts, if known.")
