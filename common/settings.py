"""Typed settings read once from the environment; a bad value stops the process with one line."""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every process reads: LOG_LEVEL and LOG_FORMAT. (Named by alias: a service's settings
    read their own variables under a prefix, these under none.)"""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field("INFO", validation_alias="LOG_LEVEL")
    log_format: Literal["json", "console"] = Field("json", validation_alias="LOG_FORMAT")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S]) -> S:
    """Build the settings or exit with one clear line naming the variable at fault."""
    try:
        return cls()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else ""
        # A field's own name is read under the class's prefix; an alias (the loc of a field
        # that has one) is the variable itself.
        prefix = str(cls.model_config.get("env_prefix", "")) if name in cls.model_fields else ""
        variable = (prefix + name).upper() or "environment"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise SystemExit(f"configuration error: {variable}: {message}") from None
