"""Text from requests made safe for one log line: nothing a client sends can start a new line.

``one_line`` escapes every character that is not printable (CR, LF, the other C0 and C1 controls, DEL,
U+2028/U+2029, unassigned and format characters) as ``\\xNN``/``\\uNNNN``/``\\UNNNNNNNN`` and doubles
backslashes, so an escape sequence in the input cannot pass for one we wrote. Long values are cut.
"""

from __future__ import annotations

DEFAULT_LIMIT = 300


def one_line(value: object, limit: int | None = DEFAULT_LIMIT, backslashes: bool = True) -> str:
    """``value`` as one printable line; ``backslashes=False`` leaves backslashes alone (for text that
    has been through one_line already, such as a whole log message)."""
    text = str(value)
    if not text.isprintable() or (backslashes and "\\" in text):
        text = "".join(_escape(ch, backslashes) for ch in text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text


def _escape(ch: str, backslashes: bool) -> str:
    if ch == "\\" and backslashes:
        return "\\\\"
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
