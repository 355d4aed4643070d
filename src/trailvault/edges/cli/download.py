"""``trailvault download``: SAS CI360's audit download job, against a trailvault server."""

from __future__ import annotations

import configparser
import logging
from pathlib import Path

import click

from trailvault.adapters.formats import parse_formats
from trailvault.edges.cli.output import emit_json
from trailvault.errors import InvalidInput
from trailvault.workflows.download import DownloadSettings, run_download

__all__ = ["download"]

_KNOWN = {
    "TENANT": {"gatewayhost"},
    "API": {"datarangestarttimestamp", "datarangeendtimestamp"},
    "PROGRAM": {"downloadparquet", "outputformat", "logsdir", "outputdir", "logging", "loglevel", "databaseurl"},
    "CREDENTIALS": {"apiuser", "apisecret", "staticjwt"},
}
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_YES = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False, "0": False}


def _read_ini(path: str, sections: tuple[str, ...], what: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as exc:
        raise InvalidInput(f"{what}: cannot read {path} ({exc.strerror}); check the path", field=what) from None
    except configparser.Error as exc:
        raise InvalidInput(f"{what}: {path} is not a valid INI file ({exc.message})", field=what) from None
    for section in parser.sections():
        if section not in sections:
            raise InvalidInput(f"{what}: unknown section [{section}] in {path}; use {', '.join(sections)}", field=what)
        unknown = sorted(set(parser[section]) - _KNOWN[section])
        if unknown:
            raise InvalidInput(
                f"{unknown[0]}: unknown key in [{section}] of {path}; known keys: {', '.join(sorted(_KNOWN[section]))}",
                field=unknown[0],
            )
    return parser


def _beside(base: Path, url: str) -> str:
    """``url`` with a relative SQLite file made relative to ``base`` (config.ini's folder), as
    outputdir and logsdir are: a job started by cron from another folder loads the same file."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url[len(prefix) :] and not url[len(prefix) :].startswith(("/", "~")):
        return prefix + str(base / url[len(prefix) :])
    return url


def _flag(value: str, key: str) -> bool:
    try:
        return _YES[value.strip().lower()]
    except KeyError:
        raise InvalidInput(f"{key}: use Yes or No (true or false), not {value!r}", field=key) from None


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="config.ini.")
@click.option(
    "--credentials", "credentials_path", required=True, type=click.Path(dir_okay=False), help="credentials.ini."
)
def download(config_path: str, credentials_path: str) -> None:
    """Download the server's events into files, incrementally (SAS CI360's download job, its INI files).

    Without dataRangeStartTimeStamp/dataRangeEndTimeStamp each run takes what arrived since the
    last successful one; a failed run changes nothing and exits 1. Relative paths are relative
    to config.ini's folder.

    \b
    Example:
      trailvault download --config config.ini --credentials credentials.ini
    """
    config = _read_ini(config_path, ("TENANT", "API", "PROGRAM"), "config")
    credentials = _read_ini(credentials_path, ("CREDENTIALS",), "credentials")
    secret = credentials.get("CREDENTIALS", "staticjwt", fallback="") or credentials.get(
        "CREDENTIALS", "apisecret", fallback=""
    )
    if not secret.strip():
        raise InvalidInput("staticjwt: credentials.ini needs staticjwt (or apisecret): the API key", field="staticjwt")
    host = config.get("TENANT", "gatewayhost", fallback="").strip()
    if not host:
        raise InvalidInput("gatewayhost: config.ini [TENANT] needs gatewayhost, the server's URL", field="gatewayhost")
    base = Path(config_path).resolve().parent
    program = config["PROGRAM"] if config.has_section("PROGRAM") else {}
    database_url = _beside(base, program.get("databaseurl", "").strip()) or None
    # With a database to load, files are written only when outputformat asks for them.
    formats = [item for item in program.get("outputformat", "" if database_url else "CSV").split(",") if item.strip()]
    if _flag(program.get("downloadparquet", "No"), "downloadparquet"):
        formats.append("parquet")
    outputdir = base / Path(program.get("outputdir", "output")).expanduser()
    _logging(program, base)
    settings = DownloadSettings(
        outputdir=outputdir,
        formats=parse_formats(formats, field="outputformat") if formats else (),
        range_start=config.get("API", "datarangestarttimestamp", fallback="").strip() or None,
        range_end=config.get("API", "datarangeendtimestamp", fallback="").strip() or None,
        api_user=credentials.get("CREDENTIALS", "apiuser", fallback="").strip() or None,
        database_url=database_url,
    )
    try:
        from trailvault.workflows.client import connect

        with connect(host, secret.strip()) as vault:
            result = run_download(vault, settings)
    except Exception as exc:
        logging.getLogger("trailvault.download").error("the download failed: %s", getattr(exc, "message", exc))
        raise
    emit_json(
        {
            "events": result.events,
            "first_seq": result.first_seq,
            "last_seq": result.last_seq,
            "range": result.range_label,
            "files": [str(path) for path in result.files],
        }
    )


def _logging(program: object, base: Path) -> None:
    """Log to logsdir/trailvault-download.log at loglevel when logging is on (the token never appears)."""
    get = program.get  # type: ignore[attr-defined]
    level = str(get("loglevel", "INFO")).strip().upper()
    if level not in _LEVELS:
        raise InvalidInput(f"loglevel: use one of {', '.join(_LEVELS)}, not {level!r}", field="loglevel")
    if not _flag(get("logging", "true"), "logging"):
        return
    folder = base / Path(get("logsdir", "logs")).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"logsdir: cannot create {folder} ({exc.strerror})", field="logsdir") from None
    handler = logging.FileHandler(folder / "trailvault-download.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("trailvault")
    logger.addHandler(handler)
    logger.setLevel(level)
