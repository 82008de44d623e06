"""The HTTP service: `ragqa serve` runs create_app(settings) under uvicorn."""
