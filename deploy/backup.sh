#!/bin/sh
# Jauge's backups: pg_dump (custom format) every BACKUP_INTERVAL_SECONDS into BACKUP_DIR, dumps
# older than BACKUP_KEEP_DAYS deleted (only after a dump succeeded: a failing database never
# empties the folder). BACKUP_ONCE=true: one dump, then exit (cron, tests).
# Restore drill: README, "Operations".
set -eu
: "${DATABASE_URL:?DATABASE_URL must be set}"
dir="${BACKUP_DIR:-/backups}"
interval="${BACKUP_INTERVAL_SECONDS:-86400}"
keep_days="${BACKUP_KEEP_DAYS:-7}"
mkdir -p "$dir"

while :; do
    stamp="$(date -u +%Y%m%dT%H%M%SZ)"
    partial="$dir/.jauge-$stamp.dump.partial"
    if pg_dump --format=custom --no-owner --no-privileges --dbname="$DATABASE_URL" --file="$partial"; then
        mv "$partial" "$dir/jauge-$stamp.dump"
        echo "backup: wrote $dir/jauge-$stamp.dump"
        find "$dir" -maxdepth 1 -type f -name 'jauge-*.dump' -mmin "+$((keep_days * 1440))" -print -delete \
            | sed 's/^/backup: deleted /'
        status=0
    else
        rm -f "$partial"
        echo "backup: pg_dump failed, older dumps kept" >&2
        status=1
    fi
    if [ "${BACKUP_ONCE:-false}" = "true" ]; then
        exit "$status"
    fi
    sleep "$interval"
done
