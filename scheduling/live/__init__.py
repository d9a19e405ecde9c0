"""Answers that stay current: live slot feeds and kept public answers.

* ``feeds`` - ``LiveService``: ``slotsChanged`` feeds shared by every widget watching the same
  page and window, recomputed once per change;
* ``answer_cache`` - ``AnswerCache``: finished public page answers, dropped the moment the
  owner's availability changes anywhere.
"""
