"""The wire: command line, configuration and (later) Twilio's HTTP and WebSocket protocols."""
