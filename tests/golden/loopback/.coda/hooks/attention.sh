# Coda's attention hook: tells the app what this terminal's agent CLI is doing.
#
#     bash ~/.coda/hooks/attention.sh <agent> <event> [payload]
#
# The agent CLIs' hooks run it (the app writes it here and their hook settings
# at every start). It posts the CLI's event and its JSON payload (stdin, or the
# last argument for Codex's notify) to $CODA_APP_URL/_coda/local/attention with
# this terminal's $CODA_SESSION_KEY. Plain bash and /dev/tcp: no interpreter
# to start. Never in the CLI's way: no output, always exit 0, done in well
# under a second even when the app is down (connection refused at once) or
# stuck (the answer is awaited 0.5 s). Outside a Coda terminal it does nothing.
exec 2>/dev/null
url=${CODA_APP_URL-} key=${CODA_SESSION_KEY-}
case $url in http://*) ;; *) exit 0 ;; esac
case "$1$2" in '' | *[!A-Za-z0-9_.:-]*) exit 0 ;; esac
[ -n "$key" ] || exit 0
body=${3-}
if [ -z "$body" ] && [ ! -t 0 ]; then
  # The CLI writes its payload and closes; what is past 256 KiB is drained, never left blocking it.
  body=$(head -c 262144; cat >/dev/null)
fi
LC_ALL=C
rest=${url#http://}
hostport=${rest%%/*}
base=${rest#"$hostport"}
host=${hostport%:*} port=${hostport##*:}
[ "$host" != "$hostport" ] || port=80
{
  printf 'POST %s/_coda/local/attention?agent=%s&event=%s&t=%s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\nX-Coda-Session-Key: %s\r\nContent-Length: %d\r\n\r\n%s' \
    "$base" "$1" "$2" "${EPOCHREALTIME-}" "$hostport" "$key" "${#body}" "$body" >&3 &&
    read -r -t 0.5 _ <&3
} 3<>"/dev/tcp/$host/$port"
exit 0
