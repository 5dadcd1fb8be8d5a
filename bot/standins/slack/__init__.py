"""The Slack stand-in: the Web API, response_urls and Socket Mode towards the bot, a user towards it."""
