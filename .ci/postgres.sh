#!/usr/bin/env bash
# Start a local PostgreSQL (Debian's package) for the API tests; prints the URL to use.
# Connects over the Unix socket with peer authentication, so no password and no TCP port are involved.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
ver=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1 {print $1}')
if [ -z "$ver" ]; then
  ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  pg_createcluster "$ver" main >&2
fi
pg_ctlcluster "$ver" main start >&2 2>/dev/null || true
me=$(id -un)
su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='$me'\"" | grep -q 1 \
  || su postgres -c "createuser -s $me" >&2
dropdb --if-exists synth_test >&2 2>/dev/null || true
createdb synth_test >&2
echo "postgresql:///synth_test?host=/var/run/postgresql"
