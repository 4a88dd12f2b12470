"""Real servers for tests: redis-server processes, in-loop uvicorn apps, gateway processes."""
