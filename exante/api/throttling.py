"""Rate limits shared by every worker (429 ``throttled``).

Counters live in the Django cache: Redis when ``REDIS_URL`` is set, so all gunicorn workers
and hosts count together; process memory otherwise (fine for one local process).

DRF's stock ``SimpleRateThrottle`` keeps a list of timestamps per client and rewrites it
with a read-modify-write, so concurrent requests on different workers overwrite each
other's entries and a burst gets through. Here each request is one atomic ``INCR`` of a
counter for the current window, and the previous window's count is weighted by how much of
it still overlaps the sliding period (the approximation Cloudflare and nginx-style limiters
use): no lost updates, constant memory, and no double allowance at a window boundary.

Rates are ``"<n>/<period>"`` with period ``s``, ``m``/``min``, ``h`` or ``d`` (optionally
with a count, ``100/10m``), from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``.
"""

import logging
import math
import re
import time

from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger("exante.api")

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)s?\s*$")
_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_SECONDS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """``"120/min"`` → ``(120, 60)``; ``None`` or ``""`` means no limit."""
    if not rate:
        return None
    match = _RATE.match(rate)
    if not match:
        raise ValueError(f"invalid throttle rate {rate!r}; use e.g. 120/min or 1000/h")
    count, multiplier, unit = match.groups()
    return int(count), int(multiplier or 1) * _SECONDS[unit]


def retry_after(previous: int, current: int, allowed: int, elapsed: float, period: int) -> float:
    """Seconds until one more request fits, if nothing else arrives meanwhile.

    ``previous`` and ``current`` count the accepted requests of the previous and current
    windows; ``elapsed`` is how far into the current window we are.
    """
    room = allowed - 1  # the next request counts too
    if current <= room and previous:
        # It fits in this window once the previous window's weight has decayed enough.
        return max(0.0, period * (1.0 - (room - current) / previous) - elapsed)
    to_next_window = period - elapsed
    if current == 0:
        return to_next_window
    # In the next window this window becomes the decaying "previous".
    return to_next_window + period * max(0.0, 1.0 - room / current)


class SlidingWindowThrottle(BaseThrottle):
    """Base class: subclasses say which ``rate_name`` applies and who the client is."""

    cache = cache
    timer = staticmethod(time.time)

    def rate_name(self, request, view) -> str | None:
        raise NotImplementedError

    def client_key(self, request, view) -> str | None:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        self.wait_seconds = None
        name = self.rate_name(request, view)
        if name is None:
            return True
        limits = parse_rate(api_settings.DEFAULT_THROTTLE_RATES.get(name))
        ident = self.client_key(request, view)
        if limits is None or ident is None:
            return True
        allowed, period = limits
        try:
            return self._count(f"throttle:{name}:{ident}", allowed, period)
        except Exception:
            # A cache outage must not take the API down with it: limits are protection,
            # not correctness. Fail open, loudly.
            logger.exception("Rate-limit cache unavailable; request not counted")
            return True

    def _count(self, base: str, allowed: int, period: int) -> bool:
        now = self.timer()
        window = int(now // period)
        current_key = f"{base}:{window}"
        # add() is a no-op when the key exists, so the expiry is set once per window.
        self.cache.add(current_key, 0, timeout=period * 2)
        try:
            current = self.cache.incr(current_key)
        except ValueError:  # evicted between add() and incr()
            self.cache.set(current_key, 1, timeout=period * 2)
            current = 1
        previous = self.cache.get(f"{base}:{window - 1}", 0)
        elapsed = now - window * period
        if previous * (1.0 - elapsed / period) + current <= allowed:
            return True
        # A refused request is not counted, so a client that keeps retrying early is not
        # locked out for longer than Retry-After says.
        self.cache.decr(current_key)
        self.wait_seconds = retry_after(previous, current - 1, allowed, elapsed, period)
        return False

    def wait(self) -> float | None:
        if self.wait_seconds is None:
            return None
        return max(1, math.ceil(self.wait_seconds))


class PrincipalRateThrottle(SlidingWindowThrottle):
    """Per API key (rate ``api_key``) or per user (rate ``user``).

    A key has its own budget, separate from its user's interactive use, so a runaway
    integration cannot lock its owner out of the API (and vice versa). Anonymous requests
    are not counted here: they are refused with 401 before throttling runs.
    """

    def rate_name(self, request, view) -> str | None:
        user = getattr(request, "user", None)
        if not (user and user.is_authenticated):
            return None
        return "api_key" if getattr(user, "api_key", None) is not None else "user"

    def client_key(self, request, view) -> str | None:
        user = request.user
        api_key = getattr(user, "api_key", None)
        return f"k{api_key.pk}" if api_key is not None else f"u{user.uid}"


class ScopedIPRateThrottle(SlidingWindowThrottle):
    """Per client IP, for views that set ``throttle_scope`` (the public ``/api/auth/*``
    views use ``auth``): slows password guessing and token-refresh abuse.

    The IP is ``REMOTE_ADDR`` unless ``NUM_PROXIES`` trusted proxies are configured, in
    which case it is read from ``X-Forwarded-For`` that many hops from the right; a client
    cannot pick its own identity by sending the header.
    """

    def rate_name(self, request, view) -> str | None:
        return getattr(view, "throttle_scope", None)

    def client_key(self, request, view) -> str | None:
        return self.get_ident(request)
