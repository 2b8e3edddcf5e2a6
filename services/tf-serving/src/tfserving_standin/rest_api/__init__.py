"""TF Serving's REST API (aiohttp) over the core's ServingApi."""
