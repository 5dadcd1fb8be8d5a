"""The Slack adapter: Bolt listeners, Block Kit rendering and delivery through the Web API."""
