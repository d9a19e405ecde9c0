"""The Kokous process: settings, the Starlette app, HTTP routes and the command line."""
