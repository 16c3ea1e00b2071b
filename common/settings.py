"""Typed settings read once from the environment; a bad value stops the process with one line."""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every process reads: LOG_LEVEL and LOG_FORMAT."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] = "json"

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
        variable = str(error["loc"][0]).upper() if error["loc"] else "environment"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise SystemExit(f"configuration error: {variable}: {message}") from None
