"""Helpers shared by test modules of every layer (nothing here is a test).

* ``booking_helpers``: a server with a fixed clock, an owner with a page, booking documents.
* ``calendar_rows``: connections and calendars written straight into the database.
* ``clock``: ``MovableClock``, a clock a test moves by hand.
* ``connect_helpers``: connecting calendars over the API, settings pointed at the doubles.
* ``graphql_documents``: GraphQL documents of the owner-facing API.
* ``live_server``: the app served by uvicorn on a free loopback port, in the test's loop.
* ``owners``: ``make_owner``, an owner created through the user service.
* ``polling``: ``eventually``, polling until a value is accepted.
* ``redis_process``: a private redis-server to stop and restart.
* ``services_available``: the real PostgreSQL and Redis, or why a test skips.
* ``settings``: ``sqlite_settings``, server settings on a SQLite database.
* ``smtp_sink``: a real SMTP server on loopback that keeps what it receives.
* ``status_helpers``: calendar status over a WebSocket, and the emails an incident sends.
* ``sync``: running a coroutine from synchronous fixture code.
* ``ws_client``: GraphQL subscriptions through ``gql`` over either WebSocket protocol.
"""
