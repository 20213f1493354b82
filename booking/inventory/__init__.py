"""Seats in Redis: the key layout (`keys`), the Lua scripts' facade (`scripts.Scripts`), the
values they exchange (`records`) and what their error codes mean (`lua_errors`)."""
