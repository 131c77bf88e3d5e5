"""Transfers: the TwiML that takes a call from the automated agent to a person, and the REST redirect.

The TwiML for a call that leaves the media stream is built here and only here. ``/twilio/after-stream`` answers
it when our side closed the stream; in ``rest_redirect`` mode the session sends the same TwiML to Twilio's REST
API (``calls(sid).update(twiml=...)``) instead, for set-ups where closing the stream is not the way out::

    goodbye              <Hangup/>
    transfer, number     <Dial action=/twilio/dial-status timeout=N><Number url=/twilio/whisper?call=CA...>
    transfer, SIP        the same with <Sip url=...>: the whisper speaks the handoff's summary (in the call's
                         language) to the person who answers, before the caller is connected
    transfer, queue      <Enqueue action=/twilio/dial-status waitUrl=/twilio/queue-wait>
    not reached          (no-answer, busy, failed, canceled; a full queue) <Gather numDigits=1
                         action=/twilio/dial-choice>: 1 a call-back, 2 a message; no key: a call-back
    agent full           (VOICE_AGENT_MAX_CALLS reached, from /twilio/voice) <Say> the over_capacity message, then
                         the default department's <Dial> or <Enqueue> as above

What the caller hears comes from the catalogue (prompts/<lang>/replies.yaml); the whisper is the handoff's summary.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from telephony.call_record import CallRecord, call_record
from telephony.calls import CallInfo
from telephony.settings import Settings, TransferMode
from telephony.transfer_timeline import TransferState
from telephony.twilio import twiml
from telephony.twilio.deployment import TransferTarget
from voice.events import Action
from voice.handoff import mask_digits
from voice.prompts import Catalogue

log = logging.getLogger(__name__)

TWILIO_API_BASE_URL = "https://api.twilio.com"
"""Where twilio-python sends ``calls(sid).update``; only a loopback server may replace it (tests)."""
REST_TIMEOUT_S = 10.0
"""Longest wait for Twilio's REST API; the session falls back to closing the stream after it."""
QUEUE_WAIT_PAUSE_S = 30
"""Silence between two wait messages in a queue."""
CHOICE_TIMEOUT_S = 8
"""How long the caller has to press 1 or 2 after the offer ends."""
MESSAGE_MAX_LENGTH_S = 120
"""Longest message a caller can leave."""

# Twilio's <Say> language for each catalogue language.
SAY_LANGUAGES = {"en": "en-US", "nl": "nl-NL"}
# DialCallStatus and QueueResult values after which the caller has spoken to a person (or is gone): hang up. Every
# other value (no-answer, busy, failed, canceled, queue-full, error, system-error, leave, or none) offers a call-back.
_CONNECTED = frozenset({"completed", "answered", "bridged", "bridging-in-process", "hangup", "redirected"})
# Of those, the one where the caller hung up in the queue rather than talking to a person.
_CALLER_HUNG_UP = "hangup"
# The keys the caller is offered when nobody took the transfer (the catalogue's transfer_unanswered names them).
CALLBACK_KEY = "1"
MESSAGE_KEY = "2"


class Transfers:
    """The transfer TwiML of this deployment and, in ``rest_redirect`` mode, the redirect of live calls."""

    def __init__(
        self, targets: Mapping[str, TransferTarget], catalogue: Catalogue, redirector: CallRedirector | None = None
    ) -> None:
        """Set up the transfers of one deployment.

        Args:
            targets: department -> where it takes calls (validated against the catalogue).
            catalogue: the replies the caller hears, the default department and the language.
            redirector: the REST client; None closes the stream instead (``close_stream`` mode).
        """
        self._targets = targets
        self._default_department = catalogue.policy.default_department
        self._replies = catalogue.replies
        self._no_handoff = catalogue.handoff.missing
        self._language = SAY_LANGUAGES[catalogue.language]
        self.redirector = redirector

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        targets: Mapping[str, TransferTarget],
        catalogue: Catalogue,
        redirector: CallRedirector | None = None,
    ) -> Transfers:
        """The transfers for `settings.transfer_mode`.

        Args:
            redirector: in ``rest_redirect`` mode, a REST client to use instead of Twilio's (tests point one at a
                fake server); ignored in ``close_stream`` mode.
        """
        if settings.transfer_mode is not TransferMode.REST_REDIRECT:
            return cls(targets, catalogue)
        return cls(targets, catalogue, redirector or CallRedirector.from_settings(settings))

    # --- what Twilio does with the call ------------------------------------------------------------------------

    def after_stream(self, call: CallRecord | None, public_base_url: str) -> str:
        """The TwiML for a call leaving the media stream: hang up after a goodbye, otherwise reach a person.

        A transfer, or a stream that ended without a decision (a fault, a restart), goes to a person, never silence.
        """
        outcome = call.outcome if call else None
        if outcome is not None and outcome.action == Action.END.value:
            return twiml.hang_up()
        department = (outcome.department if outcome else None) or self._default_department
        return self._dial(department, call.call_sid if call else None, public_base_url)

    @property
    def default_department(self) -> str:
        """Who takes calls the agent cannot (over capacity, draining)."""
        return self._default_department

    def over_capacity(self, call_sid: str | None, public_base_url: str) -> str:
        """The TwiML for a call the agent cannot take (too many calls): a short message, then the default department.

        The dial and its fallbacks are those of any transfer, so nobody is left without a person or a call-back.
        """
        return self._dial(self._default_department, call_sid, public_base_url, announcement=self._replies.over_capacity)

    def _dial(
        self, department: str, call_sid: str | None, public_base_url: str, announcement: str | None = None
    ) -> str:
        base = public_base_url.rstrip("/")
        return twiml.dial_department(
            self._targets[department],
            # The whisper is fetched for the new leg to the person, whose CallSid is not the caller's: name the call.
            whisper_url=base + twiml.WHISPER_PATH + ("?" + urlencode({"call": call_sid}) if call_sid else ""),
            status_url=base + twiml.DIAL_STATUS_PATH,
            wait_url=base + twiml.QUEUE_WAIT_PATH,
            announcement=announcement,
            language=self._language,
        )

    def first_step(self, call: CallRecord | None) -> TransferState | None:
        """The transfer's first state once `after_stream`'s TwiML runs: ringing a number or SIP address, or waiting
        in a queue; None for a call that hangs up after a goodbye."""
        outcome = call.outcome if call else None
        if outcome is not None and outcome.action == Action.END.value:
            return None
        return self.department_step((outcome.department if outcome else None) or self._default_department)

    def department_step(self, department: str) -> TransferState:
        """Ringing or queued: how a transfer to `department` starts."""
        return TransferState.QUEUED if self._targets[department].queue else TransferState.RINGING

    @staticmethod
    def dial_step(status: str) -> TransferState:
        """The transfer's state after the dial or the queue ended, from DialCallStatus or QueueResult."""
        if status == _CALLER_HUNG_UP:
            return TransferState.CALLER_HUNG_UP
        if status in _CONNECTED:
            return TransferState.COMPLETED
        return TransferState.NOT_ANSWERED

    def whisper(self, call: CallRecord | None) -> str:
        """What the person who answers hears before the caller is connected: the handoff's summary, the same text
        the desk card shows, in the deployment's language."""
        handoff = call.handoff if call else None
        # Masked again: the whisper must never read out a number, whatever a stored record holds.
        text = mask_digits(handoff.summary) if handoff else self._no_handoff
        return twiml.say(text, language=self._language)

    def queue_wait(self) -> str:
        """The wait message of a queue, then a pause; Twilio asks again when it ends."""
        return twiml.queue_wait(self._replies.queue_wait, self._language, QUEUE_WAIT_PAUSE_S)

    @staticmethod
    def reached(status: str) -> bool:
        """Whether a DialCallStatus or QueueResult means the caller was connected to a person (or hung up)."""
        return status in _CONNECTED

    def after_dial(self, status: str, public_base_url: str) -> str:
        """The TwiML after the dial or the queue ended: hang up, or offer a call-back or a message."""
        if self.reached(status):
            return twiml.hang_up()
        choice_url = public_base_url.rstrip("/") + twiml.DIAL_CHOICE_PATH
        return twiml.offer_choice(self._replies.transfer_unanswered, self._language, choice_url, CHOICE_TIMEOUT_S)

    @staticmethod
    def callback_chosen(digits: str) -> bool:
        """Whether the caller's key after the offer asks for a call-back: 1, any key but 2, or none at all (they
        asked for a person, so doing nothing must not lose them)."""
        return digits != MESSAGE_KEY

    def choice(self, digits: str, public_base_url: str) -> str:
        """The TwiML for the caller's key after the offer: a message (2) is recorded, otherwise a call-back is
        confirmed (`callback_chosen`)."""
        if not self.callback_chosen(digits):
            base = public_base_url.rstrip("/")
            return twiml.record_message(
                self._replies.leave_message,
                self._language,
                recorded_url=base + twiml.MESSAGE_RECORDED_PATH,
                # Silence records nothing; the caller then gets a call-back rather than a message that is not there.
                nothing_url=base + twiml.DIAL_CHOICE_PATH,
                max_length_s=MESSAGE_MAX_LENGTH_S,
            )
        return twiml.say_and_hang_up(self._replies.callback_confirmed, self._language)

    def message_recorded(self) -> str:
        """Thanks for the message, then the end of the call."""
        return twiml.say_and_hang_up(self._replies.message_thanks, self._language)

    # --- rest_redirect mode ------------------------------------------------------------------------------------

    async def redirect(self, call: CallInfo, public_base_url: str) -> bool:
        """Give the live call its after-stream TwiML through Twilio's REST API, off the event loop.

        Returns:
            True when Twilio accepted the new TwiML; False in ``close_stream`` mode or when the request failed, in
            which case closing the stream still makes Twilio ask ``/twilio/after-stream`` for the same TwiML.
        """
        if self.redirector is None:
            return False
        body = self.after_stream(call_record(call), public_base_url)
        try:
            # A blocking HTTP request (requests, inside twilio-python): in a thread, never on the loop.
            await asyncio.to_thread(self.redirector.redirect, call.call_sid, body)
        except Exception as error:  # any failure must still reach a person: the stream close is the fallback
            log.error("REST redirect failed, closing the stream instead: %r", error, extra={"call": call.call_sid})
            return False
        log.info("call redirected through the REST API", extra={"call": call.call_sid})
        return True


class CallRedirector:
    """Twilio's REST API for one job: replace the TwiML of a live call (``calls(sid).update(twiml=...)``)."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_base_url: str = TWILIO_API_BASE_URL,
        timeout_s: float = REST_TIMEOUT_S,
    ) -> None:
        """Make the client; nothing is sent until `redirect`.

        Args:
            account_sid: the Twilio account (AC...).
            auth_token: its auth token (HTTP basic auth with the account SID).
            api_base_url: Twilio's API, or for tests a server on a loopback address; nothing else is accepted, so a
                call's TwiML can never be sent to another host by a configuration mistake.
            timeout_s: longest wait for an answer.

        Raises:
            ValueError: `api_base_url` is neither Twilio's API nor a loopback address.
        """
        check_api_base_url(api_base_url)
        # Imported here: only rest_redirect mode needs the REST client (and requests behind it).
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self._client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout_s))
        # twilio-python builds every api.twilio.com URL from the Api domain's base_url (twilio/base/domain.py).
        self._client.api.base_url = api_base_url

    @classmethod
    def from_settings(cls, settings: Settings) -> CallRedirector:
        """The REST client for Twilio's API with the configured account (in ``rest_redirect`` mode `Settings` has
        made sure that TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are set)."""
        auth_token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        return cls(settings.twilio_account_sid or "", auth_token)

    def redirect(self, call_sid: str, twiml_body: str) -> None:
        """Replace the TwiML of the live call `call_sid` (blocking; run it in a thread).

        Raises:
            twilio.base.exceptions.TwilioRestException: Twilio refused (an unknown or finished call, bad credentials).
            requests.RequestException: Twilio could not be reached in time.
        """
        self._client.calls(call_sid).update(twiml=twiml_body)


def check_api_base_url(url: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    # api.twilio.com, or a regional one such as api.dublin.ie1.twilio.com.
    if parts.scheme == "https" and host.startswith("api.") and host.endswith(".twilio.com"):
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if parts.scheme in ("http", "https") and loopback:
        return
    raise ValueError(f"api_base_url must be {TWILIO_API_BASE_URL} (or a loopback test server), got {url!r}")
