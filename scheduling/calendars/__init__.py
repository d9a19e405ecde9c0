"""Connected calendars: connecting, reading busy time, writing events, losing and regaining access.

* ``connect`` - ``ConnectionService``: OAuth and form connections, choosing, removing one
  calendar and disconnecting an account;
* ``directory`` - ``ConnectionDirectory``: an owner's connections and their settings, listed;
* ``access`` - ``ProviderAccess``: every provider call for a stored connection; where lost
  access turns calendars inactive;
* ``status`` - status events and the owner's one email per inactive-calendar incident;
* ``busy_sync`` - ``BusySync``: the busy-time cache and the range each calendar holds; the
  background pass, and one sync per burst of change notifications;
* ``event_sync`` - busy time kept from a calendar's events, round by round (only changes after
  the first), and a booking's own event followed when the owner deletes or moves it;
* ``channels`` - ``PushChannels``: the providers' watch channels, renewed before they end, and
  the check of each notification;
* ``busy_check`` - ``BusyCheck``: the providers asked at booking time, whose answer decides;
* ``writes`` - the booking's calendar event, written by the outbox;
* ``clients`` - adapters built from settings; ``vault`` - credentials sealed at rest;
* ``public_urls`` - refusing user-supplied URLs that point inside the network.
"""
