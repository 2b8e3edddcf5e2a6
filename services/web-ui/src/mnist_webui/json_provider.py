"""Flask's JSON answers written by orjson: the same values, compact and with keys sorted as
Flask writes them, several times faster (a number may be spelled differently: 1e-6 for 1e-06).
json.dumps, most of it the encoder's Python set-up for a small object, took about 8 % of the
app's CPU per prediction (cProfile of the predict path with a fake model server).

Anything orjson will not write as the standard library would is left to Flask's own provider:
other keyword arguments (the indented output of debug mode), keys that are not strings, lone
surrogates in a string, integers beyond 64 bits, and what Flask's `default` writes (dates as HTTP
dates, where orjson would write ISO 8601; dataclasses; anything else not JSON's own). One
difference stays: a NaN or an infinity, which the standard library writes as NaN or Infinity (not
JSON at all, and refused by a browser's JSON.parse), comes out as null.
"""

from __future__ import annotations

import typing as t

import orjson
from flask.json.provider import DefaultJSONProvider

_COMPACT = {"separators": (",", ":")}  # what DefaultJSONProvider.response passes outside debug mode
# Sorted keys as Flask writes them; dates, dataclasses and subclasses of str, int, dict and list
# are not orjson's to write (without a `default` it then raises, and Flask's provider writes them).
_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


class OrjsonProvider(DefaultJSONProvider):
    def dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
        if (not kwargs or kwargs == _COMPACT) and self.sort_keys:
            try:
                # ensure_ascii: the standard library escapes non-ASCII text; orjson writes UTF-8,
                # the same characters to any JSON reader.
                return orjson.dumps(obj, option=_OPTIONS).decode()
            except TypeError:  # orjson.JSONEncodeError is one
                pass
        return super().dumps(obj, **kwargs)
