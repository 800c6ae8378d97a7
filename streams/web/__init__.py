"""The worker's web server: health, metrics, and the read-only live map.

This package owns the HTTP routes added to Faust's aiohttp server. Everything here is
read-only: no route changes pipeline state.
"""
