"""Connection security for the framework: WebSocket origin checks
(``narrows.security.websocket``)."""
