"""Booking a slot and everything after it.

* ``book`` - ``BookingService``: a visitor's booking or request, checked against the calendars
  at that moment and inserted so that overlaps are impossible;
* ``lifecycle`` - ``BookingLifecycle``: cancel, reschedule, accept and decline;
* ``rules`` - what a visitor sends, validated against the page before anything is written;
* ``queries`` - ``BookingQueries``: the owner's bookings and requests, listed;
* ``manage_links`` - the invitee's signed token and links to cancel or reschedule.
"""
