"""Calendar provider adapters behind one protocol: busy intervals in, calendar events out."""
