"""How strong a configured secret key is, judged without ever showing it.

Every key in ``KOKOUS_SECRET_KEYS`` signs links and (through a key derived for that alone)
encrypts provider credentials, so a guessable one gives away both. Production refuses keys
shorter than ``MIN_KEY_LENGTH`` characters or below ``MIN_KEY_BITS`` (the length times the bits
of the character classes the key uses: ``secrets.token_urlsafe(32)`` is about 256), and a key
that repeats a few characters (``aaaa…``, ``abab…``) whatever its length. The estimate cannot
see words, hence the length floor on top of it.
"""

from __future__ import annotations

import math
import string
from collections import Counter

MIN_KEY_LENGTH = 32
MIN_KEY_BITS = 128
MIN_BITS_PER_CHARACTER = 3.0  # Shannon entropy of the key's own characters
GENERATE_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"

_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
_OTHER_CHARACTERS = 33  # printable ASCII punctuation and space


def estimated_bits(secret: str) -> float:
    """Bits a brute-force search over the key's character classes would have to cover."""
    pool = sum(len(chars) for chars in _CLASSES if any(c in chars for c in secret))
    if any(not any(c in chars for chars in _CLASSES) for c in secret):
        pool += _OTHER_CHARACTERS
    return len(secret) * math.log2(pool) if pool > 1 else 0.0


def bits_per_character(secret: str) -> float:
    """Shannon entropy of the key's characters: low when a few characters repeat."""
    counts = Counter(secret)
    return -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values()) if secret else 0.0


def weakness(secret: str) -> str | None:
    """Why ``secret`` is too weak for production, or None. The reason never quotes the key."""
    if len(secret) < MIN_KEY_LENGTH:
        return f"it has {len(secret)} characters, at least {MIN_KEY_LENGTH} are needed"
    bits = estimated_bits(secret)
    if bits < MIN_KEY_BITS:
        return f"an estimated {bits:.0f} bits, at least {MIN_KEY_BITS} are needed"
    if bits_per_character(secret) < MIN_BITS_PER_CHARACTER:
        return "it repeats a few characters"
    return None
