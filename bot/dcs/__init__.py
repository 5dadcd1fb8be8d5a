"""The DCS adapter, where all DCS wire knowledge lives: request signing, authentication, the aiohttp
client for the DCS v2 API, the JSON models and their quirks, error bodies and what error codes mean."""
