"""Generic consumers: WebSocket (sync, async, JSON) and HTTP, with Channels' names."""
