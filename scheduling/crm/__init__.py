"""The owner's CRM side: contacts, the meetings logged on them, tasks, calendar sync."""
