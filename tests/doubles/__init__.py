"""Wire-level doubles of the calendar providers, for the adapters' and the API's tests.

A double is a small HTTP server on loopback that speaks the provider's wire format (Google,
Microsoft Graph, Exchange EWS), as strict as the provider about what it accepts; it records
every request, and a test can tell it to fail (a status, a body, a delay). The adapters reach it
through their real client libraries. CalDAV is tested against a real Radicale instead
(``radicale.py``), with a forwarding double in front of it for planned faults. Google and Graph
post their change notifications to the registered address from a background thread
(``notifier.py``), as the providers do.
"""
