"""Settings: one table, read from defaults, the config file, ``TRAILVAULT_*`` and flags.

Later sources win: default < config file < environment variable < command-line
flag. The config file is TOML: ``--config FILE``, else ``$TRAILVAULT_CONFIG``,
else ``./trailvault.toml`` when it exists, else ``~/.config/trailvault/config.toml``
when it exists. Example::

    vault = "/var/lib/trailvault"
    app = "billing"
    max_future_skew = 600

    [archive]                      # archiving (docs/archive.md); only in the file
    destination = "s3://audit-archive/trailvault"
    schedule = "1h"
    retention = "30d"

    [oci]                          # the OCI face (docs/compat/oci.md); only in the file
    prefix = "/oci"
    compartments = { "ocid1.compartment.oc1..aaaa" = "billing" }
    logs = { "ocid1.log.oc1.eu-frankfurt-1.amaa" = "billing/datasafe-log" }
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trailvault.core.batches import DEFAULT_MAX_BATCH_EVENTS, DEFAULT_RETENTION, ArchiveSettings
from trailvault.errors import InvalidInput
from trailvault.workflows.archive.automatic import ArchivePlan
from trailvault.workflows.vault.opening import open_vault
from trailvault.workflows.vault.vault import DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_FUTURE_SKEW, Vault

__all__ = [
    "ARCHIVE_KEYS", "OCI_KEYS", "SETTINGS", "Setting", "archive_plan", "config_file", "load_settings",
    "open_configured_vault", "parse_duration",
]  # fmt: skip


@dataclass(frozen=True)
class Setting:
    """One setting: its name (``TRAILVAULT_<NAME>`` in the environment), default and help."""

    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str

    @property
    def env_var(self) -> str:
        return "TRAILVAULT_" + self.name.upper()


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("use true or false")


def _durability(text: str) -> str:
    if text not in ("full", "normal"):
        raise ValueError("use full or normal")
    return text


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "vault", "trailvault-data", "the vault: a folder, a .sqlite3 file, a sqlite:/// URL or a postgresql:// URL"
    ),
    Setting("app", "default", "the app (tenant) to write and read as; Platform 6's application_id"),
    Setting("max_event_bytes", DEFAULT_MAX_EVENT_BYTES, "largest event accepted, in bytes of canonical JSON", int),
    Setting("max_future_skew", DEFAULT_MAX_FUTURE_SKEW, "seconds an event's time may be ahead of the clock", float),
    Setting(
        "signing_key",
        "",
        "the vault's Ed25519 key file (default: vault.key beside a SQLite database; "
        "~/.config/trailvault/keys/<vault id>.key for PostgreSQL)",
    ),
    Setting("log_name", "trailvault", "the first part of the checkpoints' origin, <log_name>/<vault id>"),
    Setting(
        "durability",
        "full",
        "full: every post survives power loss; normal: survives a crash of the process only",
        _durability,
    ),
    Setting("server", "", "a trailvault server's URL; when set, commands act on it instead of a local vault"),
    Setting("token", "", "the API key (tv_…) sent to the server; prefer the environment variable to a file"),
    Setting("host", "127.0.0.1", "serve: the address to listen on"),
    Setting("port", 8080, "serve: the TCP port to listen on", int),
    Setting("max_request_bytes", 16 << 20, "serve: largest request body, in bytes (413 above)", int),
    Setting("rate_limit", 1000.0, "serve: requests a second per API key, 0 for no limit (429 above)", float),
    Setting("request_timeout", 30.0, "serve: seconds before a request is answered 503", float),
    Setting(
        "statement_timeout",
        10.0,
        "serve: seconds a listing's database query may run before it is cancelled (503 query_timeout); 0: no limit",
        float,
    ),
    Setting(
        "app_concurrency",
        4,
        "serve: requests of one app (other than posts) served at once; more wait 1 s, then 429; 0: no limit",
        int,
    ),
    Setting("audit_reads", True, "serve: record every read in the app's channel trailvault.reads", _flag),
    Setting("cors_origins", "", "serve: comma-separated origins allowed by CORS (empty: CORS off)"),
)
_BY_NAME = {setting.name: setting for setting in SETTINGS}

#: The keys of the ``[archive]`` section, with their defaults and help.
ARCHIVE_KEYS: dict[str, tuple[Any, str]] = {
    "destination": ("", "automated archiving: a folder or fsspec URL (s3://bucket/prefix); empty: off"),
    "storage_options": ({}, "options for the destination's fsspec filesystem (a table, e.g. endpoint_url)"),
    "schedule": ("1h", "automated archiving: time between runs on a server (s, m, h or d)"),
    "lag": ("10m", "automated archiving: only events at least this old are batched"),
    "retention": ("30d", "how long an archived event stays in the vault after it was received, before purge"),
    "max_batch_events": (DEFAULT_MAX_BATCH_EVENTS, "the largest archive batch, in events"),
}
#: The keys of the ``[oci]`` section (the OCI face, docs/compat/oci.md), with their defaults and help.
OCI_KEYS: dict[str, tuple[Any, str]] = {
    "prefix": ("", "serve the OCI paths under this path too (/oci: /oci/20181201/auditEvents); empty: only at /"),
    "listing_channel": ("datasafe", "the channel of an app that Data Safe's audit-event listing reads"),
    "compartments": ({}, "a table: compartment OCID = app, or app/channel (an app's own name needs no entry)"),
    "logs": ({}, "a table: log OCID = app/channel that PutLogs writes the log's entries to"),
}
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, *, field: str) -> float:
    """Seconds from a number or a text such as ``90s``, ``15m``, ``12h``, ``30d``; InvalidInput naming ``field``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        try:
            seconds = float(text[:-1]) * _DURATION_UNITS[text[-1]] if text[-1:] in _DURATION_UNITS else float(text)
        except ValueError:
            seconds = -1.0
    # NaN fails every comparison: only a finite, non-negative number of at most 100 years passes.
    if not 0 <= seconds <= 100 * 365 * 86400:
        raise InvalidInput(f"{field}: {value!r} is not a duration; use seconds or 90s, 15m, 12h, 30d", field=field)
    return seconds


def config_file(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """Return the config file to read, or None when there is none."""
    env = os.environ if env is None else env
    if explicit is not None:
        return Path(explicit)
    if env.get("TRAILVAULT_CONFIG"):
        return Path(env["TRAILVAULT_CONFIG"])
    for candidate in (Path("trailvault.toml"), Path.home() / ".config" / "trailvault" / "config.toml"):
        if candidate.is_file():
            return candidate
    return None


def load_settings(
    *,
    config: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return every setting's value; raise InvalidInput naming a bad one and where it came from."""
    env = os.environ if env is None else env
    values = {setting.name: setting.default for setting in SETTINGS}
    values["archive"] = {name: default for name, (default, _) in ARCHIVE_KEYS.items()}
    values["oci"] = {name: default for name, (default, _) in OCI_KEYS.items()}
    path = config_file(config, env)
    if path is not None:
        for name, value in _read_config(path).items():
            if name == "archive":
                values["archive"].update(_check_archive(value, path))
            elif name == "oci":
                values["oci"].update(_check_oci(value, path))
            else:
                values[name] = _check(name, value, f"{path}")
    for setting in SETTINGS:
        if env.get(setting.env_var):
            values[setting.name] = _check(setting.name, env[setting.env_var], setting.env_var)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _check(name, value, "the command line")
    return values


def open_configured_vault(settings: Mapping[str, Any], *, create: bool, sign: bool = True) -> Vault:
    """Open the vault that ``settings`` (from :func:`load_settings`) name (``sign``: see :func:`open_vault`)."""
    return open_vault(
        settings["vault"],
        app=settings["app"],
        create=create,
        durability=settings["durability"],
        max_event_bytes=settings["max_event_bytes"],
        max_future_skew=settings["max_future_skew"],
        signing_key=settings["signing_key"] or None,
        log_name=settings["log_name"],
        archive=_archive_settings(settings),
        sign=sign,
    )


def _archive_settings(settings: Mapping[str, Any]) -> ArchiveSettings:
    section = settings.get("archive") or {}
    return ArchiveSettings(
        max_batch_events=int(section.get("max_batch_events", DEFAULT_MAX_BATCH_EVENTS)),
        retention=parse_duration(section.get("retention", DEFAULT_RETENTION), field="archive.retention"),
    )


def archive_plan(settings: Mapping[str, Any]) -> ArchivePlan | None:
    """Return automated archiving's plan from ``settings``, or None when ``[archive] destination`` is not set."""
    section = settings.get("archive") or {}
    if not section.get("destination"):
        return None
    return ArchivePlan(
        destination=str(section["destination"]),
        storage_options=dict(section.get("storage_options") or {}),
        schedule=parse_duration(section.get("schedule", "1h"), field="archive.schedule"),
        lag=parse_duration(section.get("lag", "10m"), field="archive.lag"),
    )


def _read_config(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise InvalidInput(f"config: cannot read {path} ({exc.strerror}); check --config", field="config") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"config: {path} is not valid TOML ({exc})", field="config") from None
    unknown = sorted(set(data) - set(_BY_NAME) - {"archive", "oci"})
    if unknown:
        raise InvalidInput(
            f"{unknown[0]}: unknown setting in {path}; known settings are {', '.join(_BY_NAME)}", field=unknown[0]
        )
    return data


def _check_archive(section: Any, path: Path) -> dict[str, Any]:
    """Check the ``[archive]`` section: known keys, each of the right kind."""
    if not isinstance(section, dict):
        raise InvalidInput(f"archive: in {path}, archive is a section ([archive]), not a value", field="archive")
    unknown = sorted(set(section) - set(ARCHIVE_KEYS))
    if unknown:
        raise InvalidInput(
            f"archive.{unknown[0]}: unknown key in {path}; the [archive] keys are {', '.join(ARCHIVE_KEYS)}",
            field=f"archive.{unknown[0]}",
        )
    for name in ("schedule", "lag", "retention"):
        if name in section:
            parse_duration(section[name], field=f"archive.{name}")
    if "max_batch_events" in section and (
        not isinstance(section["max_batch_events"], int) or not 1 <= section["max_batch_events"] <= 10_000_000
    ):
        raise InvalidInput(f"archive.max_batch_events: in {path}, use 1 to 10000000", field="archive.max_batch_events")
    if "storage_options" in section and not isinstance(section["storage_options"], dict):
        raise InvalidInput(f"archive.storage_options: in {path}, use a table", field="archive.storage_options")
    if "destination" in section and not isinstance(section["destination"], str):
        raise InvalidInput(f"archive.destination: in {path}, give a folder or URL as text", field="archive.destination")
    return dict(section)


def _check_oci(section: Any, path: Path) -> dict[str, Any]:
    """Check the ``[oci]`` section: known keys, text where text goes, tables of text for the mappings.

    What the values mean (an app, ``app/channel``) is checked by the face when the server starts.
    """
    if not isinstance(section, dict):
        raise InvalidInput(f"oci: in {path}, oci is a section ([oci]), not a value", field="oci")
    unknown = sorted(set(section) - set(OCI_KEYS))
    if unknown:
        raise InvalidInput(
            f"oci.{unknown[0]}: unknown key in {path}; the [oci] keys are {', '.join(OCI_KEYS)}",
            field=f"oci.{unknown[0]}",
        )
    for name in ("prefix", "listing_channel"):
        if name in section and not isinstance(section[name], str):
            raise InvalidInput(f"oci.{name}: in {path}, give it as text", field=f"oci.{name}")
    for name in ("compartments", "logs"):
        table = section.get(name, {})
        if not isinstance(table, dict) or not all(isinstance(value, str) for value in table.values()):
            raise InvalidInput(
                f'oci.{name}: in {path}, use a table of text, such as {{ "ocid1..." = "app/channel" }}',
                field=f"oci.{name}",
            )
    return dict(section)


def _check(name: str, value: Any, source: str) -> Any:
    setting = _BY_NAME[name]
    if isinstance(value, str) or not isinstance(value, type(setting.default)):
        try:
            return setting.parse(str(value))
        except ValueError as exc:
            raise InvalidInput(f"{name}: {value!r} from {source} is not valid ({exc})", field=name) from None
    return value
