"""The price book: `platform/prices.yaml` validated (analysis/cost.py prices plans with it).

Keyed by region; every price and instance type names its sources (listed in the file) and the
date it was current, so a figure without provenance is an error rather than a silent number.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stacks.data import load_yaml


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Price(_Data):
    price: float = Field(ge=0)
    unit: str
    sources: tuple[str, ...] = Field(min_length=1)
    date: str


class InstancePrice(_Data):
    price: float = Field(gt=0)
    vcpu: int = Field(gt=0)
    arch: Literal["arm64", "amd64"]
    sources: tuple[str, ...] = Field(min_length=1)
    date: str


class RegionPrices(_Data):
    asOf: str  # noqa: N815 (the data file's key)
    prices: dict[str, Price]
    instances: dict[str, InstancePrice]


class PriceBook(_Data):
    currency: str
    hoursPerMonth: int = Field(gt=0)  # noqa: N815
    sources: dict[str, str]
    regions: dict[str, RegionPrices]

    @model_validator(mode="after")
    def _sources_exist(self) -> PriceBook:
        unknown = sorted(
            f"{region}.{key}: {source}"
            for region, book in self.regions.items()
            for key, sources in [
                *((k, v.sources) for k, v in book.prices.items()),
                *((k, v.sources) for k, v in book.instances.items()),
            ]
            for source in sources
            if source not in self.sources
        )
        if unknown:
            raise ValueError(f"prices cite sources not listed under `sources`: {', '.join(unknown)}")
        return self


@cache
def price_book() -> PriceBook:
    """platform/prices.yaml, validated (a price without a source or date is an error)."""
    return PriceBook.model_validate(load_yaml("prices.yaml"))
