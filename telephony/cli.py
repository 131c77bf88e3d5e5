"""The ``voice-agent`` command: ``serve``, ``replay``, ``chat``, ``lint-prompts``, ``purge``, ``export`` and
``models``, and the desk accounts (``users``) and the audit trail (``audit``)."""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from telephony.model_manifest import ManifestError
from telephony.models_command import add_models_parser
from telephony.settings import Settings, SettingsError, load_settings
from telephony.storage.accounts import AccountError
from telephony.storage.store import StorageError
from telephony.twilio.deployment import DeploymentError
from voice.dialogue import DialogueEngine
from voice.events import Action, Decision, Dtmf, Transcript
from voice.models import ModelNotFound
from voice.prompts import LANGUAGES, PromptError, load_catalogue
from voice.tone import lint_catalogue

if TYPE_CHECKING:
    from telephony.storage.store import CallStore

DTMF_PREFIX = "DTMF:"


def _decision_json(caller: str | None, decision: Decision) -> str:
    return json.dumps(
        {
            "caller": caller,
            "intent": decision.intent,
            "confidence": decision.confidence,
            "action": decision.action.value,
            "reply": decision.reply,
            "reasons": list(decision.reasons),
            "rule": decision.rule,
            "department": decision.department,
            "transfer_reason": decision.transfer_reason,
        },
        ensure_ascii=False,
    )


def _decision_text(decision: Decision) -> str:
    detail = f"[{decision.action.value}; rule {decision.rule}"
    if decision.intent:
        detail += f"; intent {decision.intent} {decision.confidence:.2f}"
    if decision.department:
        detail += f"; to {decision.department}"
    return f"agent: {decision.reply}\n       {detail}]"


def parse_caller_line(line: str) -> Transcript | Dtmf | None:
    """One stdin line as a caller turn: ``DTMF:<key>`` is a key press, other text is speech; blank is None.

    Raises:
        ValueError: a DTMF line whose key is not one of 0-9, * or #.
    """
    text = line.strip()
    if not text:
        return None
    if text.upper().startswith(DTMF_PREFIX):
        digit = text[len(DTMF_PREFIX) :].strip()
        if len(digit) != 1 or digit not in "0123456789*#":
            raise ValueError(f"{text!r}: expected DTMF:<key> with one key of 0-9, * or #")
        return Dtmf(digit)
    return Transcript(text)


def run_chat(engine: DialogueEngine, lines: Iterable[str], out: TextIO, as_json: bool) -> int:
    """Talk to the engine in text, one caller turn per line, until the input ends or the call is handed over.

    Returns:
        The process exit code.
    """
    show = (lambda caller, d: _decision_json(caller, d)) if as_json else (lambda caller, d: _decision_text(d))
    state, decision = engine.start()
    print(show(None, decision), file=out, flush=True)
    for line in lines:
        try:
            turn = parse_caller_line(line)
        except ValueError as error:
            print(f"voice-agent chat: {error}", file=sys.stderr)
            continue
        if turn is None:
            continue
        state, decision = engine.step(state, turn)
        print(show(line.strip(), decision), file=out, flush=True)
        # As on a call: after a goodbye or a handover to a person the agent says no more.
        if decision.action in (Action.END, Action.TRANSFER):
            break
    return 0


def _chat(args: argparse.Namespace) -> int:
    settings = load_settings(language=args.lang, prompts_dir=args.prompts)
    engine = DialogueEngine.from_prompts(settings.prompts_dir, settings.language)
    if sys.stdin.isatty() and not args.json:
        print("Type what the caller says; DTMF:<key> presses a key; Ctrl-D ends.", file=sys.stderr)
    return run_chat(engine, sys.stdin, sys.stdout, args.json)


def _lint_prompts(args: argparse.Namespace) -> int:
    settings = load_settings(prompts_dir=args.prompts)
    languages = [args.lang] if args.lang else list(LANGUAGES)
    problems = []
    for language in languages:
        catalogue = load_catalogue(settings.prompts_dir, language)
        problems += lint_catalogue(catalogue)
        replies = len(catalogue.intents) + len(catalogue.replies.texts())
        handoffs = len(catalogue.handoff.examples())
        print(f"{language}: {replies} replies and {handoffs} handoff texts checked", file=sys.stderr)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} tone problems", file=sys.stderr)
    return 1 if problems else 0


# glibc's mallopt parameter number for the arena limit (malloc.h).
_M_ARENA_MAX = -8
SERVER_MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = SERVER_MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas, as ``MALLOC_ARENA_MAX`` would; call it before any thread starts.

    glibc gives threads that allocate at once arenas of their own (up to eight per core), and memory freed into one
    arena is not reused by the others. With the model workers', onnxruntime's and uvicorn's threads, two arenas keep
    the server's peak memory under many calls lower at no cost in latency (`benchmarks/concurrency.py`;
    docs/benchmarks.md). An explicit ``MALLOC_ARENA_MAX`` in the environment is left to glibc.

    Returns:
        True when the limit was set (Linux with glibc, no ``MALLOC_ARENA_MAX`` given).
    """
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # another C library (musl): nothing to tune
        return False


def _serve(args: argparse.Namespace) -> int:
    limit_malloc_arenas()
    import uvicorn

    from telephony.app import create_app
    from telephony.logs import configure_logging
    from telephony.server import VoiceAgentServer
    from telephony.voice_services import choose_voice, recognizer_model_dir

    settings = load_settings(language=args.lang)
    configure_logging(settings.log_level, language=settings.language)
    # Before anything starts: a missing voice or recogniser stops here with its message, not in uvicorn's log.
    choose_voice(settings)
    recognizer_model_dir(settings)
    app = create_app(settings)
    # proxy_headers: behind a TLS-terminating proxy the scheme and client come from X-Forwarded-*; set
    # VOICE_AGENT_PUBLIC_URL as well so that signature checks use the URL Twilio actually called.
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        proxy_headers=True,
        log_config=None,
        log_level=settings.log_level,
        ws="websockets-sansio",
    )
    # Reloads the catalogue on SIGHUP; drains the calls on SIGTERM/SIGINT, then ends the desk's event streams (plain
    # uvicorn would wait for them).
    server = VoiceAgentServer(config)
    server.run()
    return 0 if server.started else 1  # not started: the port was taken or the app failed to load (logged)


def _open_store(settings: Settings) -> CallStore:
    from telephony.storage.store import CallStore

    store = CallStore.from_settings(settings)
    store.migrate()
    return store


def _purge(args: argparse.Namespace) -> int:
    from telephony.storage.audit import AuditAction, AuditOutcome, AuditTrail, cli_actor
    from telephony.storage.pseudonyms import CallerPseudonyms
    from telephony.storage.retention import purge_audit_older_than, purge_older_than

    settings = load_settings()
    store = _open_store(settings)
    audit, actor = AuditTrail(store), cli_actor()
    try:
        if args.call:
            deleted = 0
            for call_sid in args.call:
                found = store.delete_call(call_sid)
                deleted += found
                outcome = AuditOutcome.OK if found else AuditOutcome.NOT_FOUND
                audit.record(actor, AuditAction.DELETE_CALL, call_sid, outcome=outcome)
            what = f"{deleted} of {len(args.call)} named calls"
        elif args.caller:
            pseudonym = CallerPseudonyms.from_settings(settings).of(args.caller, args.region)
            if pseudonym is None:
                print(f"voice-agent purge: not a phone number: {args.caller!r}", file=sys.stderr)
                return 2
            deleted = store.delete_caller(pseudonym)
            audit.record(actor, AuditAction.FORGET_CALLER, detail={"deleted_calls": deleted})
            what = f"{deleted} calls of that caller"
        else:
            days = args.older_than if args.older_than is not None else settings.retention_days
            deleted = purge_older_than(store, days)
            audit.record(actor, AuditAction.PURGE, detail={"deleted_calls": deleted, "older_than_days": days})
            purge_audit_older_than(audit, settings.audit_retention_days)
            what = f"{deleted} calls that ended more than {days:g} days ago"
    finally:
        store.close()
    print(f"deleted {what} from {store.url}", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    from telephony.storage.audit import AuditAction, AuditOutcome, AuditTrail, cli_actor
    from telephony.storage.export import export_document

    settings = load_settings()
    store = _open_store(settings)
    try:
        record = store.get(args.call_sid)
        outcome = AuditOutcome.OK if record is not None else AuditOutcome.NOT_FOUND
        AuditTrail(store).record(cli_actor(), AuditAction.EXPORT, args.call_sid, outcome=outcome)
    finally:
        store.close()
    if record is None:
        print(f"voice-agent export: no call {args.call_sid!r} in {store.url}", file=sys.stderr)
        return 1
    text = json.dumps(export_document(record, settings.retention_days), indent=2, ensure_ascii=False)
    if args.output is None:
        print(text)
    else:
        args.output.write_text(text + "\n", encoding="utf-8")
        print(f"exported {args.call_sid} to {args.output}", file=sys.stderr)
    return 0


def _new_password(args: argparse.Namespace) -> str:
    """The password from stdin (``--password-stdin``, for scripts) or typed twice at a terminal."""
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def _users(args: argparse.Namespace) -> int:
    from telephony.roles import Role
    from telephony.storage.accounts import DeskAccounts
    from telephony.storage.audit import AuditAction, AuditTrail, cli_actor

    store = _open_store(load_settings())
    accounts, audit, actor = DeskAccounts(store), AuditTrail(store), cli_actor()
    try:
        if args.action == "list":
            for account in accounts.all():
                print(f"{account.name}\t{account.role.value}\tsince {account.created_at}")
            return 0
        if args.action == "add":
            account = accounts.add(args.name, Role(args.role), _new_password(args))
            audit.record(actor, AuditAction.ACCOUNT_ADDED, account.name, detail={"role": account.role.value})
            print(f"added {account.role.value} account {account.name!r}", file=sys.stderr)
        elif args.action == "set-password":
            accounts.set_password(args.name, _new_password(args))
            audit.record(actor, AuditAction.PASSWORD_SET, args.name)
            print(f"password of {args.name!r} set; its desk sessions have ended", file=sys.stderr)
        elif args.action == "remove":
            if not accounts.remove(args.name):
                print(f"voice-agent users: no account {args.name!r}", file=sys.stderr)
                return 1
            audit.record(actor, AuditAction.ACCOUNT_REMOVED, args.name)
            print(f"removed account {args.name!r}; its desk sessions have ended", file=sys.stderr)
        return 0
    except AccountError as error:
        print(f"voice-agent users: {error}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _audit(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from telephony.storage.audit import AuditTrail

    store = _open_store(load_settings())
    try:
        since = datetime.now(UTC) - timedelta(days=args.days) if args.days is not None else None
        events = AuditTrail(store).events(since, limit=None)
    finally:
        store.close()
    lines = "".join(event.model_dump_json() + "\n" for event in events)
    if args.output is None:
        sys.stdout.write(lines)
    else:
        args.output.write_text(lines, encoding="utf-8")
        print(f"wrote {len(events)} audit events to {args.output}", file=sys.stderr)
    return 0


def _positive_days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        days = -1.0
    if not days > 0:
        raise argparse.ArgumentTypeError(f"expected a number of days above 0, got {value!r}")
    return days


def _replay(args: argparse.Namespace) -> int:
    # The QA tool is a client of the server, installed as an extra: the server runs without it.
    try:
        from qa.command import replay_command
    except ImportError as error:
        print(
            f"voice-agent replay needs the QA tools ({error.name} is missing): pip install -e '.[qa]'",
            file=sys.stderr,
        )
        return 2
    return replay_command(
        args.calls,
        args.report,
        server_url=args.server,
        parallel=args.parallel,
        token=args.token,
        junit_path=args.junit,
        inline_audio=args.inline_audio,
    )


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return int(value)


def _media_stream_url(value: str) -> str:
    if not value.startswith(("ws://", "wss://")):
        raise argparse.ArgumentTypeError(
            f"expected a ws:// or wss:// URL such as ws://127.0.0.1:8080/twilio/media, got {value!r}"
        )
    return value


PACKAGE = "voice-agent"


def installed_version() -> str:
    """The installed package's version (its metadata), or a note that the code runs without being installed."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``voice-agent``."""
    parser = argparse.ArgumentParser(prog="voice-agent", description="Self-hosted voice agent for phone calls.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the Twilio webhook and media-stream server")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    serve.add_argument("--lang", choices=LANGUAGES, help="language (default: VOICE_AGENT_LANGUAGE or en)")
    serve.set_defaults(run=_serve)

    replay = commands.add_parser(
        "replay", help="replay fixture calls through the Media Streams path, as Twilio would, with a report"
    )
    replay.add_argument(
        "calls", nargs="+", type=Path, metavar="CALL", help="fixture call files, or folders of them (a suite)"
    )
    replay.add_argument(
        "--server",
        type=_media_stream_url,
        metavar="URL",
        help="media-stream URL of a running server, such as ws://127.0.0.1:8080/twilio/media "
        "(default: run the server in this process, which also reports transcripts and decisions)",
    )
    replay.add_argument(
        "--report",
        type=Path,
        default=Path("replay-report"),
        metavar="DIR",
        help="report folder (default: replay-report)",
    )
    replay.add_argument(
        "--parallel",
        type=_positive_int,
        default=1,
        metavar="N",
        help="replay up to N calls at once (default 1: each call's latencies free of the others' work)",
    )
    replay.add_argument(
        "--token",
        metavar="T",
        help="with --server: an agent or admin token of its call API, to report transcripts and decisions "
        "(default: VOICE_AGENT_REPLAY_TOKEN)",
    )
    replay.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML of the run, for CI")
    replay.add_argument(
        "--inline-audio",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="recordings inside report.html, or (--no-inline-audio) linked to the WAV files beside it "
        "(default: inside for up to 10 calls)",
    )
    replay.set_defaults(run=_replay)

    chat = commands.add_parser("chat", help="talk to the dialogue engine in text, one caller line per stdin line")
    chat.add_argument("--lang", choices=LANGUAGES, help="language (default: VOICE_AGENT_LANGUAGE or en)")
    chat.add_argument("--json", action="store_true", help="one JSON object per turn")
    chat.add_argument("--prompts", type=Path, help="catalogue folder (default: VOICE_AGENT_PROMPTS_DIR or prompts/)")
    chat.set_defaults(run=_chat)

    lint = commands.add_parser("lint-prompts", help="check every reply's tone and the catalogue's structure")
    lint.add_argument("--lang", choices=LANGUAGES, help="one language (default: all)")
    lint.add_argument("--prompts", type=Path, help="catalogue folder (default: VOICE_AGENT_PROMPTS_DIR or prompts/)")
    lint.set_defaults(run=_lint_prompts)

    purge = commands.add_parser(
        "purge",
        help="delete stored call records: those older than the retention period (default), named calls, or one "
        "caller's",
        description="Delete call records from the database (VOICE_AGENT_DATABASE_URL, else the SQLite file in "
        "VOICE_AGENT_DATA_DIR). The server also purges daily by VOICE_AGENT_RETENTION_DAYS.",
    )
    chosen = purge.add_mutually_exclusive_group()
    chosen.add_argument(
        "--older-than",
        type=_positive_days,
        metavar="DAYS",
        help="delete what ended more than DAYS ago (default: VOICE_AGENT_RETENTION_DAYS, 30)",
    )
    chosen.add_argument("--call", nargs="+", metavar="CALL_SID", help="delete these calls")
    chosen.add_argument("--caller", metavar="NUMBER", help="delete every call from this number (E.164: +31612345678)")
    purge.add_argument("--region", metavar="CC", help="country of a --caller number without +code, such as NL")
    purge.set_defaults(run=_purge)

    export = commands.add_parser("export", help="print one call's whole stored record as JSON, for an auditor")
    export.add_argument("call_sid", metavar="CALL_SID")
    export.add_argument("--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    export.set_defaults(run=_export)

    users = commands.add_parser(
        "users",
        help="named desk accounts (agent or admin) that people log in with",
        description="Desk accounts in the call-record database; passwords are stored as argon2id hashes. Machines "
        "keep using VOICE_AGENT_AGENT_TOKEN and VOICE_AGENT_ADMIN_TOKEN. Every change is in the audit trail.",
    )
    actions = users.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="the accounts and their roles")
    add = actions.add_parser("add", help="create an account (asks for its password)")
    add.add_argument("name", help="lower-case letters, digits, '.', '-' or '_'")
    add.add_argument("--role", choices=["agent", "admin"], default="agent", help="default: agent")
    set_password = actions.add_parser("set-password", help="replace an account's password; it is logged out")
    set_password.add_argument("name")
    for command in (add, set_password):
        command.add_argument(
            "--password-stdin", action="store_true", help="read the password from the first line of stdin (scripts)"
        )
    remove = actions.add_parser("remove", help="delete an account; it is logged out")
    remove.add_argument("name")
    users.set_defaults(run=_users)

    audit = commands.add_parser(
        "audit",
        help="print the audit trail as JSON lines: reveals, voicemails, exports, deletions, purges, logins",
        description="Who did what to callers' data and to access, oldest first, one JSON object per line. Kept for "
        "VOICE_AGENT_AUDIT_RETENTION_DAYS (365).",
    )
    audit.add_argument("--days", type=_positive_days, metavar="DAYS", help="only the last DAYS days")
    audit.add_argument("--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    audit.set_defaults(run=_audit)

    add_models_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``voice-agent`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (PromptError, SettingsError, DeploymentError, ModelNotFound, ManifestError, StorageError) as error:
        print(f"voice-agent: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
