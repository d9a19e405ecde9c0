"""The bottom layer: value types every other package may use (standard library only).

* ``values`` - the enums shared by the database tables, the domain and the API (calendar
  provider and status, page status, booking status and source, calendar write state, weekdays).
"""
