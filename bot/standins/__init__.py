"""Local stand-ins for the cloud and for Slack, used by the demo, the console and the test suite."""
