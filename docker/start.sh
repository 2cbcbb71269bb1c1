#!/bin/sh
# The image's start command: bring the schema up to date, then serve.
#
# `portal migrate` is a no-op on a current schema, and on PostgreSQL it holds an advisory lock,
# so several containers starting at once upgrade once. `portal serve` then checks the schema
# again and refuses to start on an outdated one. Workers: WEB_CONCURRENCY (read by serve).
set -eu

portal migrate
exec portal serve --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}"
