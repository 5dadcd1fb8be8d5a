"""The DCS adapter: request signing, authentication and an aiohttp client for the DCS v2 API."""
