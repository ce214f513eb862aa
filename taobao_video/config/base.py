"""The two pydantic bases every settings model derives from (``models.py``, ``services.py``): frozen and strict."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FrozenModel(BaseModel):
    # strict: TOML is typed, so "5" is not an integer and "yes" is not a boolean.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class SectionModel(FrozenModel):
    # Defaults go through the same validators, so default paths are resolved like written ones.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, validate_default=True)
