"""Settings: ``settings.toml`` plus the environment → one frozen, validated :class:`~.models.Settings`.

Precedence, later wins: the models' defaults, the settings file, ``TAOBAO_VIDEO__<SECTION>__<KEY>`` variables,
``TAOBAO_APP_KEY``. The app secret comes only from ``TAOBAO_APP_SECRET``; a settings file holding any secret
(a key named like ``app_secret``, ``token``, ``password``…, or a URL with a password) is refused. Relative
paths resolve against the settings file's folder, never the working directory.

Every problem found is collected and raised as one :class:`~taobao_video.errors.ConfigError` (exit 78), one
line per problem, each naming the file (or the environment variable), the key and what is wrong
(:mod:`~taobao_video.config.problems`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import SecretStr, ValidationError

from taobao_video.config.checks import show
from taobao_video.config.models import SECTIONS, Settings
from taobao_video.config.names import (
    APP_KEY_ENV,
    APP_SECRET_ENV,
    CONFIG_ENV,
    DEFAULT_FILE,
    GATEWAY_KEY_ENV,
    GATEWAY_SECRET_ENV,
    NOTIFY_URLS_ENV,
    OVERRIDE_PREFIX,
    app_env_suffix,
    is_secret_key,
)
from taobao_video.config.problems import (
    Problem,
    known_keys,
    raise_problems,
    secret_problems,
    unknown_key,
    unknown_section,
    unknown_top_level_key,
    validation_problems,
)
from taobao_video.errors import ConfigError

# ------------------------------------------------------------------------- the file's keys, the environment


def _file_sections(data: Mapping[Any, Any], source: str, problems: list[Problem]) -> dict[str, dict[str, Any]]:
    """The known keys of the known sections; all else becomes a problem (secrets are reported apart)."""
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for name, table in data.items():
        if not isinstance(name, str):
            problems.append(Problem(source, None, f"keys must be strings, got {show(name)}"))
        elif is_secret_key(name):
            continue
        elif name not in SECTIONS:
            problem = unknown_section(name) if isinstance(table, Mapping) else unknown_top_level_key(name)
            problems.append(Problem(source, f"[{name}]" if isinstance(table, Mapping) else name, problem))
        elif not isinstance(table, Mapping):
            problems.append(Problem(source, f"[{name}]", f"must be a table (a [{name}] section), got {show(table)}"))
        else:
            for key, value in table.items():
                if not isinstance(key, str):
                    problems.append(Problem(source, f"[{name}]", f"keys must be strings, got {show(key)}"))
                elif is_secret_key(key):
                    continue
                elif key not in known_keys(name):
                    problems.append(Problem(source, f"[{name}] {key}", unknown_key(name, key)))
                else:
                    sections[name][key] = value
    return sections


def _wants_text(section: str, key: str) -> bool:
    annotation = SECTIONS[section].model_fields[key].annotation
    if get_origin(annotation) is Literal:
        return all(isinstance(choice, str) for choice in get_args(annotation))
    return annotation in (str, Path)


def _env_value(raw: str, section: str, key: str) -> Any:
    """A variable's text as a TOML value when it is one (5000, true, ["a"]), else as the text itself."""
    try:
        parsed = tomllib.loads(f"v = {raw}")
    except (tomllib.TOMLDecodeError, RecursionError):
        return raw
    if set(parsed) != {"v"}:
        return raw
    value = parsed["v"]
    # An app key of digits or a folder named 2024 is text, whatever TOML would make of it.
    if _wants_text(section, key) and not isinstance(value, str):
        return raw
    return value


def _env_target(var: str) -> tuple[str, str] | str:
    """``(section, key)`` named by a TAOBAO_VIDEO__SECTION__KEY variable, or the problem with its name."""
    parts = var[len(OVERRIDE_PREFIX) :].split("__")
    if len(parts) != 2 or not all(parts):
        example = f"{OVERRIDE_PREFIX}QUOTA__DAILY_LIMIT"
        return f"not a settings override: expected {OVERRIDE_PREFIX}<SECTION>__<KEY>, e.g. {example}"
    section, key = parts[0].lower(), parts[1].lower()
    if section not in SECTIONS:
        return f"[{section}]: {unknown_section(section)}"
    if is_secret_key(key):
        if section == "gateway":
            names = f"{GATEWAY_KEY_ENV} and {GATEWAY_SECRET_ENV}"
            return f"not a settings override: the vendor's key and secret are read from {names} only"
        if section == "s3":
            names = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
            return f"not a settings override: object storage credentials come from {names}"
        return f"not a settings override: the app secret is read from {APP_SECRET_ENV} only"
    if key not in known_keys(section):
        return f"[{section}] {key}: {unknown_key(section, key)}"
    return section, key


def _apply_env(
    sections: dict[str, dict[str, Any]],
    origins: dict[tuple[str, str], str],
    env: Mapping[str, str],
    problems: list[Problem],
) -> None:
    """Layer the environment over the file's values, remembering which variable set which key."""
    for var in sorted(name for name in env if name.startswith(OVERRIDE_PREFIX)):
        target = _env_target(var)
        if isinstance(target, str):
            problems.append(Problem(None, var, target))
            continue
        section, key = target
        sections[section][key] = _env_value(env[var], section, key)
        origins[target] = var
    app_key = (env.get(APP_KEY_ENV) or "").strip()
    if app_key:
        sections["taobao"]["app_key"] = app_key
        origins[("taobao", "app_key")] = APP_KEY_ENV
    secret = (env.get(APP_SECRET_ENV) or "").strip()
    sections["taobao"]["app_secret"] = SecretStr(secret) if secret else None
    notify_urls = (env.get(NOTIFY_URLS_ENV) or "").split()
    if notify_urls:  # added to the file's: the file may name a harmless hook, the environment the secret ones
        file_urls = sections["notify"].get("urls", [])
        had_file_urls = "urls" in sections["notify"]
        sections["notify"]["urls"] = [*(file_urls if isinstance(file_urls, list) else [file_urls]), *notify_urls]
        origins[("notify", "urls")] = NOTIFY_URLS_ENV if not had_file_urls else f"[notify] urls and {NOTIFY_URLS_ENV}"
    for name, var in (("key", GATEWAY_KEY_ENV), ("secret", GATEWAY_SECRET_ENV)):
        value = (env.get(var) or "").strip()
        sections.setdefault("gateway", {})[name] = SecretStr(value) if value else None
    apps = sections["taobao"].get("apps")
    if isinstance(apps, (list, tuple)):
        sections["taobao"]["apps"] = [_app_from_env(app, env) for app in apps]


def _app_from_env(app: Any, env: Mapping[str, str]) -> Any:
    """An ``[[taobao.apps]]`` entry with its key and secret from ``TAOBAO_APP_KEY_<NAME>``/``..._SECRET_<NAME>``."""
    if not isinstance(app, Mapping) or not isinstance(app.get("name"), str):
        return app  # validation reports the shape
    suffix = app_env_suffix(app["name"])
    entry = dict(app)
    key = (env.get(f"{APP_KEY_ENV}_{suffix}") or "").strip()
    if key:
        entry["app_key"] = key
    secret = (env.get(f"{APP_SECRET_ENV}_{suffix}") or "").strip()
    entry["app_secret"] = SecretStr(secret) if secret else None
    return entry


# ------------------------------------------------------------------------------------------------ the API


def settings_from_mapping(
    data: Mapping[str, Any],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    source: str = "<settings>",
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Validate ``data`` (shaped like ``settings.toml``: ``{"taobao": {...}, "quota": {...}}``) into Settings.

    ``base_dir`` is the folder relative paths resolve against (default: the current directory), ``source`` the
    name used in messages. ``env`` defaults to *no* environment, so programmatic settings are exactly what the
    caller passes; pass ``os.environ`` to honour the variables. Raises ConfigError listing every problem.
    """
    env = {} if env is None else env
    base = Path(os.path.abspath(base_dir if base_dir is not None else Path.cwd()))
    if not isinstance(data, Mapping):
        raise ConfigError(f"settings must be a table of sections, got {show(data)}", file=source)
    problems = list(secret_problems(data, source))
    sections = _file_sections(data, source, problems)
    origins: dict[tuple[str, str], str] = {}
    _apply_env(sections, origins, env, problems)
    payload = {"source": source, "base_dir": base, **sections}
    try:
        settings = Settings.model_validate(payload, context={"base_dir": base})
    except ValidationError as exc:
        raise_problems([*problems, *validation_problems(exc, source, origins)])
    if problems:
        raise_problems(problems)
    return settings


def _read_toml(file: Path) -> dict[str, Any]:
    source = str(file)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"settings file not found: {file} (pass --config PATH or set {CONFIG_ENV})") from None
    except IsADirectoryError:
        raise ConfigError(f"settings file is a directory, not a file: {file}") from None
    except PermissionError:
        raise ConfigError(f"cannot read settings file {file}: permission denied") from None
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {file}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")  # tolerate the BOM some Windows editors write
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text: invalid byte 0x{raw[exc.start]:02x} on line {line}", file=source) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", file=source) from None
    except RecursionError:
        raise ConfigError("invalid TOML: values nested too deeply", file=source) from None


def load_settings(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings file and the environment into a validated, frozen Settings.

    ``path`` None means ``$TAOBAO_VIDEO_CONFIG``, else ``./settings.toml``; ``env`` defaults to
    ``os.environ``.
    Relative paths in the file resolve against the file's folder. Raises ConfigError (exit 78) naming the
    file, the key and the problem, all problems at once.
    """
    env = os.environ if env is None else env
    if path is None:
        path = env.get(CONFIG_ENV) or DEFAULT_FILE
    try:
        file = Path(os.path.abspath(Path(path).expanduser()))
    except RuntimeError:
        raise ConfigError(f"cannot expand the home folder in the settings path {os.fspath(path)!r}") from None
    return settings_from_mapping(_read_toml(file), base_dir=file.parent, source=str(file), env=env)
