"""The web service around the calls: the call API and its event stream, authentication, the agent desk, metrics."""
