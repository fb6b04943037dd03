#!/usr/bin/env bash
# Bring up what Axis needs on a Debian machine: RabbitMQ with its management API,
# xmlsec1, and with --postgres a PostgreSQL that user postgres reaches on 127.0.0.1.
#
# Idempotent: every step first checks whether it is needed, so on a machine where
# everything already runs this only probes and exits (well under two seconds).
# Runs as root, or through sudo when it is available.
#
#   scripts/services.sh             RabbitMQ (+ management) and xmlsec1
#   scripts/services.sh --postgres  the same, plus PostgreSQL
#
# Environment: AXIS_SERVICES_TIMEOUT (seconds to wait for a service, default 90).

set -euo pipefail

TIMEOUT="${AXIS_SERVICES_TIMEOUT:-90}"
AMQP_PORT=5672
MANAGEMENT_URL="http://127.0.0.1:15672/api/overview"
WANT_POSTGRES=0
# Marks the one line this script may add to pg_hba.conf, so it is added only once.
HBA_MARK="# added by axis scripts/services.sh"

for arg in "$@"; do
    case "$arg" in
        --postgres) WANT_POSTGRES=1 ;;
        -h | --help)
            sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "services.sh: unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

say() { echo "services: $*"; }
die() {
    echo "services: ERROR: $*" >&2
    exit 1
}

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=()
fi

# Root is only needed to change something; the fast path never calls this.
as_root() {
    if [ "$(id -u)" -ne 0 ] && [ ${#SUDO[@]} -eq 0 ]; then
        die "need root to run: $* (run this script as root, or install sudo)"
    fi
    "${SUDO[@]}" "$@"
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        as_root apt-get update -qq || die "apt-get update failed"
        APT_UPDATED=1
    fi
    say "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        || die "apt-get install $* failed"
}

port_open() {
    # bash's /dev/tcp needs no extra tool; timeout keeps a filtered port from hanging.
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

management_ok() {
    curl -fsS -o /dev/null --max-time 3 -u guest:guest "$MANAGEMENT_URL" 2>/dev/null
}

# wait_for DESCRIPTION COMMAND...: poll until COMMAND succeeds or TIMEOUT runs out.
wait_for() {
    local what="$1" deadline=$((SECONDS + TIMEOUT))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 1
    done
    say "$what is up"
}

ensure_curl() {
    command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
}

MIN_BROKER_FILES=4096

broker_files() {
    # The soft open-files limit of the local RabbitMQ node (beam.smp), empty if none runs here.
    local pid
    pid="$(pgrep -o -f 'beam.smp.*rabbit' 2>/dev/null || true)"
    [ -n "$pid" ] || return 0
    awk '/^Max open files/ {print $4}' "/proc/$pid/limits" 2>/dev/null || true
}

start_rabbitmq() {
    # Start the local node unless one runs (or is booting); return once it serves.
    if ! port_open "$AMQP_PORT"; then
        # A node that is still booting (say, started by the package's init script a
        # moment ago) answers ping; starting a second one would fail.
        if ! as_root rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
            say "starting rabbitmq-server"
            # Every quorum queue holds files open; the default soft limit of 1024
            # is soon reached by a hub with a hundred inboxes. Debian's wrapper
            # drops to the rabbitmq user with su, whose PAM limits reset the soft
            # limit to 1024, so drop to that user here and raise it after su.
            if id rabbitmq >/dev/null 2>&1 && [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
                as_root su rabbitmq -s /bin/sh -c \
                    'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; cd /var/lib/rabbitmq && exec /usr/lib/rabbitmq/bin/rabbitmq-server -detached' \
                    || die "rabbitmq-server -detached failed"
            else
                as_root bash -c 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec rabbitmq-server -detached' \
                    || die "rabbitmq-server -detached failed"
            fi
        fi
        wait_for "RabbitMQ (AMQP port $AMQP_PORT)" port_open "$AMQP_PORT" \
            || die "RabbitMQ did not open port $AMQP_PORT within ${TIMEOUT}s; see /var/log/rabbitmq/"
        # The port opens before every boot step has finished; await_startup covers the rest.
        as_root timeout "$TIMEOUT" rabbitmqctl -q await_startup \
            || die "rabbitmqctl await_startup failed; see /var/log/rabbitmq/"
    fi
}

files_too_few() {
    [ -n "$1" ] && [ "$1" != "unlimited" ] && [ "$1" -lt "$MIN_BROKER_FILES" ]
}

ensure_rabbitmq() {
    if ! command -v rabbitmq-server >/dev/null 2>&1 || ! command -v rabbitmqctl >/dev/null 2>&1; then
        apt_install rabbitmq-server  # Debian's init script starts it, with too few files (below)
    fi
    start_rabbitmq
    local files
    files="$(broker_files)"
    if files_too_few "$files"; then
        # Started by the package's init script, whose su resets the soft limit to
        # 1024: too few for a hub's quorum queues (logins are refused once it is
        # reached). Restart it the way start_rabbitmq starts it, unless no limit
        # this script can set would be higher (then every run would restart it).
        if ! as_root bash -c "ulimit -n $MIN_BROKER_FILES" 2>/dev/null; then
            say "warning: RabbitMQ may open only $files files and the hard limit is lower than $MIN_BROKER_FILES; raise it (limits.conf, LimitNOFILE)"
        else
            say "RabbitMQ may open only $files files (< $MIN_BROKER_FILES): restarting it"
            as_root rabbitmqctl -q stop >/dev/null 2>&1 || true
            local deadline=$((SECONDS + TIMEOUT))
            while port_open "$AMQP_PORT" || [ -n "$(broker_files)" ]; do
                [ "$SECONDS" -lt "$deadline" ] || die "RabbitMQ did not stop within ${TIMEOUT}s"
                sleep 1
            done
            start_rabbitmq
            files="$(broker_files)"
            if files_too_few "$files"; then
                say "warning: RabbitMQ still may open only $files files; raise its limits (limits.conf for the rabbitmq user)"
            fi
        fi
    fi
    if management_ok; then
        say "RabbitMQ and its management API are up"
    else
        say "enabling rabbitmq_management"
        as_root rabbitmq-plugins -q enable rabbitmq_management \
            || die "rabbitmq-plugins enable rabbitmq_management failed"
        wait_for "RabbitMQ management API" management_ok \
            || die "$MANAGEMENT_URL did not answer for guest within ${TIMEOUT}s"
    fi
}

ensure_xmlsec1() {
    if command -v xmlsec1 >/dev/null 2>&1; then
        say "xmlsec1 is installed"
    else
        apt_install xmlsec1
    fi
}

postgres_ok() {
    PGCONNECT_TIMEOUT=3 psql -X -w -q -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' \
        >/dev/null 2>&1
}

pg_cluster_version() {
    # The newest cluster configured, e.g. "15"; empty if none.
    ls /etc/postgresql 2>/dev/null | sort -V | tail -1 || true
}

ensure_postgres() {
    if postgres_ok; then
        say "PostgreSQL is up for postgres@127.0.0.1"
    else
        if ! command -v psql >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null 2>&1; then
            apt_install postgresql
        fi
        local version
        version="$(pg_cluster_version)"
        if [ -z "$version" ]; then
            # The package creates the cluster, unless the image disabled that.
            version="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1 || true)"
            [ -n "$version" ] || die "no PostgreSQL server found under /usr/lib/postgresql"
            say "creating PostgreSQL cluster $version/main"
            as_root pg_createcluster "$version" main || die "pg_createcluster $version main failed"
        fi
        if ! pg_lsclusters -h 2>/dev/null \
            | awk -v v="$version" '$1 == v && $2 == "main" && $4 == "online" {up = 1} END {exit !up}'; then
            say "starting PostgreSQL $version/main"
            as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start \
                || die "pg_ctlcluster $version main start failed; see /var/log/postgresql/"
        fi
        wait_for "PostgreSQL" pg_isready -q -h 127.0.0.1 -t 2 \
            || die "PostgreSQL did not accept connections on 127.0.0.1 within ${TIMEOUT}s"
        if ! postgres_ok; then
            allow_local_postgres "$version"
            wait_for "PostgreSQL for postgres@127.0.0.1" postgres_ok \
                || die "psql -h 127.0.0.1 -U postgres still fails; see /etc/postgresql/$version/main/pg_hba.conf"
        fi
    fi
    ensure_test_database
}

# Debian's default pg_hba.conf asks TCP clients for a password. Tests connect as
# postgres over 127.0.0.1 without one, so trust exactly that: one user, one address.
allow_local_postgres() {
    local version="$1" hba="/etc/postgresql/$1/main/pg_hba.conf"
    [ -f "$hba" ] || die "$hba not found"
    if as_root grep -qF "$HBA_MARK" "$hba"; then
        return
    fi
    say "trusting postgres@127.0.0.1 in $hba (first rule, so it wins)"
    local tmp
    tmp="$(mktemp)"
    {
        echo "host all postgres 127.0.0.1/32 trust $HBA_MARK"
        as_root cat "$hba"
    } >"$tmp"
    # cat into the file rather than mv, which keeps its owner and mode.
    as_root sh -c "cat '$tmp' > '$hba'"
    rm -f "$tmp"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload \
        || die "pg_ctlcluster $version main reload failed"
}

# The test suite's maintenance connection (AXIS_TEST_PG_URL) defaults to database "test".
ensure_test_database() {
    local exists
    exists="$(psql -X -w -h 127.0.0.1 -U postgres -d postgres -tAc \
        "select 1 from pg_database where datname = 'test'")" \
        || die "cannot query PostgreSQL as postgres@127.0.0.1"
    if [ "$exists" != "1" ]; then
        say "creating database test"
        psql -X -w -q -h 127.0.0.1 -U postgres -d postgres -c 'create database test' \
            || die "create database test failed"
    fi
}

ensure_curl
ensure_rabbitmq
ensure_xmlsec1
if [ "$WANT_POSTGRES" -eq 1 ]; then
    ensure_postgres
fi
say "all set"
