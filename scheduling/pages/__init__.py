"""Scheduling pages and what a visitor sees of them.

* ``service`` - ``PageService``: create, edit, list, disable and find pages; the public view;
* ``rules`` - a page's settings checked into their stored shape (hours, overrides, form fields);
* ``links`` - ``LinkBuilder``: page URLs from the owner's meetings link base and domain;
* ``domains`` - ``DomainService``: the connected domains pages may be served on;
* ``availability`` - ``AvailabilityService``: free slots from the rules, the busy-time cache and
  bookings, offering only time every integrated calendar has fetched.
"""
