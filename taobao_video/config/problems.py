"""Settings problems as the user reads them: each names the file (or the variable), the key and what is wrong,
unknown keys come with the known ones and a suggestion, and all of a file's problems are raised as one
:class:`~taobao_video.errors.ConfigError` (exit 78)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, NoReturn, get_args

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from taobao_video.config.checks import show
from taobao_video.config.models import SECTIONS
from taobao_video.config.names import (
    APP_SECRET_ENV,
    GATEWAY_KEY_ENV,
    GATEWAY_SECRET_ENV,
    NOTIFY_URLS_ENV,
    OVERRIDE_PREFIX,
    compact_key,
    is_secret_key,
    secret_places,
)
from taobao_video.errors import ConfigError


class Problem(NamedTuple):
    """One thing wrong: where (a file, or None for the environment), which key or variable, and what."""

    file: str | None
    key: str | None
    problem: str

    def line(self) -> str:
        return str(ConfigError(self.problem, file=self.file, key=self.key))


_SECRET_REFUSED = "secrets must not be stored in the settings file"


def _secret_advice(key: str, *, in_app: bool = False, gateway: bool = False) -> str:
    compact = compact_key(key)
    if gateway:
        advice = f"set {GATEWAY_KEY_ENV} and {GATEWAY_SECRET_ENV} in the environment instead"
    elif compact.endswith("secret") and in_app:
        advice = f"set {APP_SECRET_ENV}_<NAME> (the app's name in capitals) in the environment instead"
    elif compact.endswith("secret"):
        advice = f"set {APP_SECRET_ENV} in the environment instead"
    elif compact.endswith("token") or compact.startswith("session"):
        advice = "OAuth tokens are kept in the token file named by [taobao] token_file"
    else:
        advice = "pass credentials through the environment instead"
    return f"{_SECRET_REFUSED}; {advice}"


def _label(path: tuple[str, ...]) -> str:
    return path[0] if len(path) == 1 else f"[{'.'.join(path[:-1])}] {path[-1]}"


# --------------------------------------------------------------------------------------- secrets and keys


def secret_problems(data: Mapping[Any, Any], source: str) -> Iterator[Problem]:
    """A refusal, with what to do instead, for every secret in ``data`` (read from ``source``)."""
    for place in secret_places(data):
        key, here = place.path[-1], place.path
        if not place.in_url:
            advice = _secret_advice(key, in_app="apps" in here[:-1], gateway=here[0] == "gateway")
            yield Problem(source, _label(here), advice)
        else:
            var = f"{OVERRIDE_PREFIX}{'__'.join(here).upper()}" if len(here) == 2 else "the URL"
            if here == ("notify", "urls"):
                var = NOTIFY_URLS_ENV  # added to the file's URLs: the harmless ones may stay in the file
            problem = f"holds a password in a URL; {_SECRET_REFUSED}; set {var} in the environment instead"
            yield Problem(source, _label(here), problem)


def known_keys(section: str) -> list[str]:
    """The keys a file may set in ``[section]`` (the secret fields come from the environment only)."""
    return [key for key in SECTIONS[section].model_fields if not is_secret_key(key)]


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word.lower(), choices, n=1)
    return f"; did you mean {close[0]}?" if close else ""


def unknown_key(section: str, key: str) -> str:
    """The problem with an unknown ``key`` in ``[section]``: the known keys and the closest one."""
    known = known_keys(section)
    return f"unknown key (known keys: {', '.join(known)}){_suggest(key, known)}"


def unknown_section(name: str) -> str:
    """The problem with an unknown ``[name]``: the known sections and the closest one."""
    known = sorted(SECTIONS)
    return f"unknown section (known sections: {', '.join(known)}){_suggest(name, known)}"


def unknown_top_level_key(key: str) -> str:
    """The problem with a ``key`` written before any ``[section]``, naming the section it belongs in."""
    homes = [f"[{section}] {key}" for section in SECTIONS if key in known_keys(section)]  # the main sections first
    hint = f"; did you mean {homes[0]}?" if homes else ""
    return f"unknown key outside any section (keys belong in a [section]: {', '.join(sorted(SECTIONS))}){hint}"


# ---------------------------------------------------------------------------------------- pydantic errors


_TYPE_PROBLEMS = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "tuple_type": "must be an array",
    "list_type": "must be an array",
    "path_type": "must be a path",
    "model_type": "must be a table",
    "dict_type": "must be a table",
    "extra_forbidden": "unknown key",
}
_BOUND_PROBLEMS = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
}


def _describe(error: ErrorDetails) -> str:
    """One pydantic error as a sentence about the user's value."""
    kind, ctx, loc = error["type"], error.get("ctx") or {}, error["loc"]
    if kind == "settings":
        return str(ctx.get("problem", error["msg"]))
    got = f", got {show(error['input'])}"
    if kind in _TYPE_PROBLEMS:
        return _TYPE_PROBLEMS[kind] + got
    if kind in _BOUND_PROBLEMS:
        bounds = {name: int(v) if isinstance(v, float) and v.is_integer() else v for name, v in ctx.items()}
        return _BOUND_PROBLEMS[kind].format(**bounds) + got
    if kind == "literal_error" and len(loc) >= 2 and loc[0] in SECTIONS:
        choices = get_args(SECTIONS[str(loc[0])].model_fields[str(loc[1])].annotation)
        return f"must be one of {' | '.join(map(str, choices))}{got}"
    return str(error["msg"]) + got


def validation_problems(exc: ValidationError, source: str, origins: Mapping[tuple[str, str], str]) -> Iterator[Problem]:
    """``exc``'s errors as problems; a key set by an environment variable (``origins``) is named by it."""
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        problem = _describe(error)
        if len(loc) >= 2 and (loc[0], loc[1]) in origins:
            yield Problem(None, origins[(loc[0], loc[1])], problem)
        elif len(loc) >= 2:
            yield Problem(source, f"[{loc[0]}] {loc[1]}" + "".join(f"[{part}]" for part in loc[2:]), problem)
        else:
            yield Problem(source, f"[{loc[0]}]" if loc else None, problem)


def raise_problems(problems: list[Problem]) -> NoReturn:
    """One ConfigError: the single problem as it is, or a numbered heading and one line per problem."""
    if len(problems) == 1:
        only = problems[0]
        raise ConfigError(only.problem, file=only.file, key=only.key)
    lines = "\n".join(f"  {problem.line()}" for problem in problems)
    raise ConfigError(f"{len(problems)} problems in the settings:\n{lines}")
