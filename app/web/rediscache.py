"""The shared cache on Redis, for a shop that must keep serving when Redis does not answer.

Everything the app keeps in the cache can be computed again (rendered catalog fragments, the
board's figures, the catalog's generation), so a Redis that is down or stops answering is
treated as an empty cache: a read misses, a write is dropped. Two things keep that cheap:

- short socket timeouts (`CACHE_REDIS_TIMEOUT_SECONDS`), so a Redis port that accepts
  connections but never answers costs a request a fraction of a second, not a hang;
- a circuit breaker: after a failure the process stops asking Redis for
  `CACHE_REDIS_RETRY_SECONDS` and serves from the database alone, then tries once again.

The fall-back and the recovery are logged once each (logger `app.web.rediscache`).

`CACHE_TYPE = "app.web.rediscache.ResilientRedisCache"` selects it (see config.py).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from flask_caching.backends.rediscache import RedisCache

logger = logging.getLogger(__name__)

#: What a cache call may raise when Redis is unreachable or slow (OSError covers socket errors
#: that the client does not wrap).
UNAVAILABLE = (redis.RedisError, OSError)


class ResilientRedisCache(RedisCache):
    """Flask-Caching's RedisCache, with every call guarded by the breaker."""

    def __init__(self, *args, retry_seconds: float = 5.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.retry_seconds = retry_seconds
        self._open_until = 0.0  # monotonic time until which Redis is not asked
        self._lock = threading.Lock()
        self._failing = False

    @classmethod
    def factory(cls, app, config, args, kwargs):
        timeout = float(config.get("CACHE_REDIS_TIMEOUT_SECONDS", 0.5))
        config = {
            **config,
            "CACHE_OPTIONS": {
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
                # A connection the server dropped is found and replaced before it is used.
                "health_check_interval": 30,
                **(config.get("CACHE_OPTIONS") or {}),
            },
        }
        kwargs["retry_seconds"] = float(config.get("CACHE_REDIS_RETRY_SECONDS", 5))
        return super().factory(app, config, args, kwargs)

    @property
    def available(self) -> bool:
        """False while the breaker is open (Redis failed within the last retry_seconds)."""
        return time.monotonic() >= self._open_until

    def _guarded(self, name: str, default, *args):
        if not self.available:
            return default
        try:
            result = getattr(super(), name)(*args)
        except UNAVAILABLE as error:
            with self._lock:
                self._open_until = time.monotonic() + self.retry_seconds
                first = not self._failing
                self._failing = True
            if first:
                logger.warning(
                    "Redis cache unreachable (%s); serving without it, retrying every %.0f s",
                    error.__class__.__name__,
                    self.retry_seconds,
                )
            return default
        if self._failing:
            with self._lock:
                recovered, self._failing = self._failing, False
            if recovered:
                logger.warning("Redis cache reachable again")
        return result

    def get(self, key: str) -> Any:
        return self._guarded("get", None, key)

    def get_many(self, *keys: str) -> list[Any]:
        return self._guarded("get_many", [None] * len(keys), *keys)

    def set(self, key: str, value: Any, timeout: int | None = None) -> Any:
        return self._guarded("set", False, key, value, timeout)

    def add(self, key: str, value: Any, timeout: int | None = None) -> Any:
        return self._guarded("add", False, key, value, timeout)

    def set_many(self, mapping: dict[str, Any], timeout: int | None = None) -> list[Any]:
        return self._guarded("set_many", [], mapping, timeout)

    def delete(self, key: str) -> bool:
        return self._guarded("delete", False, key)

    def delete_many(self, *keys: str) -> list[Any]:
        return self._guarded("delete_many", [], *keys)

    def has(self, key: str) -> bool:
        return self._guarded("has", False, key)

    def clear(self) -> bool:
        return self._guarded("clear", False)

    def inc(self, key: str, delta: int = 1) -> Any:
        return self._guarded("inc", None, key, delta)

    def dec(self, key: str, delta: int = 1) -> Any:
        return self._guarded("dec", None, key, delta)
