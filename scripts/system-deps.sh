#!/usr/bin/env bash
# Installs the real daemons the tests and the demo talk to (rsyslog, logrotate), the load
# generator of the service benchmark (wrk) and valgrind (the benchmark's instruction counts),
# when they are missing. Debian's image ships a policy-rc.d that stops the system daemons from
# starting, so installing them does not take /dev/log or port 514: the tests start their own
# instances.
set -euo pipefail
missing=()
command -v rsyslogd >/dev/null 2>&1 || [ -x /usr/sbin/rsyslogd ] || missing+=(rsyslog)
command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ] || missing+=(logrotate)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: ${missing[*]} missing and no apt-get here; the tests that need them will skip" >&2
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "system-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
