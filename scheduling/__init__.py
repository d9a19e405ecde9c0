"""The scheduling domain. A request comes down from the API; events go back up after commit.

* ``engine/`` - pure slot arithmetic: intervals, weekly rules, DST, slots (no IO, no clock);
* ``pages/`` - scheduling pages, their rules, links, domains and free slots;
* ``booking/`` - booking a slot, its lifecycle, and the owner's booking lists;
* ``calendars/`` - connected calendars: connect, busy-time cache, booking-time check, event
  writes, inactive calendars;
* ``live/`` - live slot feeds for subscriptions and kept public answers;
* ``notifications/`` - emails, invitations and the mailer;
* ``users`` and ``api_tokens`` - owners, their settings and bearer tokens;
* ``events`` - typed events published after commit; ``outbox`` - work queued with a commit;
* ``errors`` - expected failures as values; ``validation`` - field checks shared by services;
* ``signing`` - signed tokens (manage links, OAuth state); ``clock``, ``concurrency``;
* ``services`` - the set of services one app builds.
"""
