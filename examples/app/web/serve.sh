#!/bin/sh
# The service refuses to start without its secret, as real apps do.
test -s /run/secrets/api_token || { echo "no api_token secret" >&2; exit 1; }
exec httpd -f -v -p 8080 -h /www
