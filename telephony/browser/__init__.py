"""A call from the browser: the desk's call page talks to the agent over a WebSocket, with no phone number.

A second transport beside `telephony.twilio`, into the same voice core: 16 kHz PCM in and out, JSON control messages
(`protocol`), the page's decisions and handover shown as they happen (`session`), the same admission, call registry,
records and redaction as a phone call (`call`), and the route, for desk users only (`router`). The page itself is
served with the desk (`telephony.web.desk`, ``GET /desk/call``).
"""
