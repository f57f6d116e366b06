# shellcheck shell=bash
# scripts/lib.sh: shared by scripts/up, scripts/down and scripts/test.
# Sourced, never run. Owns the local instance's paths and ports, package
# installation, the build (out of the tree, in build/), and
# starting/stopping each service through one skeleton (service_start,
# service_stop): PostgreSQL, the fake upstream, chatd (FastCGI pool), the
# Socket.IO gateway and nginx.
#
# A service counts as running when its pid file exists and the pid is alive
# and is the right program. Each started service also gets a ".stamp" file
# (a hash of its binary, config and environment); scripts/up restarts a
# running service only when that stamp changed, and leaves it alone
# otherwise.

CHAT_REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
# The build lives out of the source tree (see build); a second
# configuration, such as the sanitizer build of scripts/test, goes next to
# it in its own directory.
CHAT_BUILD=$CHAT_REPO/build

# Debian packages for building and running. nginx, postgresql and Node are
# checked by command instead (see missing_packages) because other flavours
# (nginx-full, a NodeSource node) serve as well.
CHAT_BASE_PACKAGES=(
	build-essential autoconf automake libtool pkg-config
	libfcgi-dev libcurl4-openssl-dev libjson-c-dev libpq-dev libjwt-dev
	libargon2-dev libwebsockets-dev check
	openssl curl ca-certificates
)
# Extra packages for scripts/test: a browser for the UI tests, valgrind,
# clang with its runtime libraries (ASan, libFuzzer); PgBouncer, iproute2
# and iptables (NFQUEUE, for tests/cluster/netdelay) for the cluster
# suite's hosts (scripts/cluster); what builds the Debian package (the
# package suite).
# shellcheck disable=SC2034 # used by scripts/test
CHAT_TEST_PACKAGES=(chromium fonts-liberation valgrind clang libclang-rt-14-dev
	pgbouncer iproute2 iptables debhelper dpkg-dev)

# ---------------------------------------------------------------- output

log() { printf '==> %s\n' "$*"; }
warn() { printf '!!  %s\n' "$*" >&2; }
die() {
	printf '!!  %s\n' "$*" >&2
	exit 1
}

# banner LINE...: a box around the lines, for things nobody may miss.
banner() {
	local line width=0
	for line in "$@"; do
		((${#line} > width)) && width=${#line}
	done
	local rule
	rule=$(printf '%*s' $((width + 4)) '' | tr ' ' '*')
	printf '\n%s\n' "$rule"
	for line in "$@"; do
		printf '* %-*s *\n' "$width" "$line"
	done
	printf '%s\n\n' "$rule"
}

# show_log FILE [LINES]: the tail of a log, after a failure.
show_log() {
	local file=$1 lines=${2:-40}
	if [ -s "$file" ]; then
		printf -- '---- last %s lines of %s ----\n' "$lines" "$file" >&2
		tail -n "$lines" -- "$file" >&2
		printf -- '---- end of %s ----\n' "$file" >&2
	else
		warn "$file is empty or missing"
	fi
}

# die_with_log FILE MESSAGE: the tail of FILE, then MESSAGE, and exit.
die_with_log() {
	show_log "$1"
	die "$2"
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# ------------------------------------------------------------------- steps
#
# scripts/up shows its work as numbered steps with their time, e.g.
# "[2/6] building… 14 s". The long quiet ones (packages, the build) send
# their output to a log under var/log/, shown only when they fail; on a
# terminal their line counts the seconds meanwhile, so a long first run
# never looks hung.

STEP_N=0 STEP_TOTAL=0 STEP_LABEL='' STEP_T0=0

# steps TOTAL: the number of steps to come.
steps() { STEP_TOTAL=$1 STEP_N=0; }

# step LABEL: the next step begins.
step() {
	STEP_N=$((STEP_N + 1)) STEP_LABEL=$1 STEP_T0=$SECONDS
	if ((STEP_TOTAL > 0)); then printf '[%d/%d] %s…\n' "$STEP_N" "$STEP_TOTAL" "$1"; else log "$1"; fi
}

# step_done: the step's line again, with its time.
step_done() {
	((STEP_TOTAL > 0)) || return 0
	printf '[%d/%d] %s… %d s\n' "$STEP_N" "$STEP_TOTAL" "$STEP_LABEL" $((SECONDS - STEP_T0))
}

# quietly LOGFILE LABEL CMD...: runs CMD with its output appended to
# LOGFILE. On a terminal, "LABEL… N s" counts the seconds on one line
# meanwhile. When CMD fails: the last lines of LOGFILE and its path, and
# CMD's status is returned.
quietly() {
	local file=$1 label=$2 rc=0 ticker=''
	shift 2
	mkdir -p "$(dirname -- "$file")"
	printf '\n---- %s: %s\n' "$(date -Is)" "$*" >>"$file"
	if [ -t 1 ]; then
		(
			t0=$SECONDS
			while sleep 1; do printf '\r    %s… %d s ' "$label" $((SECONDS - t0)); done
		) &
		ticker=$!
	fi
	"$@" >>"$file" 2>&1 </dev/null || rc=$?
	if [ -n "$ticker" ]; then
		kill "$ticker" 2>/dev/null || true
		wait "$ticker" 2>/dev/null || true
		printf '\r\033[K'
	fi
	if ((rc != 0)); then
		show_log "$file" 30
		warn "$label failed (status $rc); the whole output is in $file"
	fi
	return "$rc"
}

# ------------------------------------------------------------ paths, ports

# chat_init: fills in the defaults and derived paths. Callers may set
# CHAT_VAR and the CHAT_*_PORT variables first (scripts/test does).
chat_init() {
	CHAT_VAR=${CHAT_VAR:-$CHAT_REPO/var}
	case $CHAT_VAR in
	/*) ;;
	*) CHAT_VAR=$PWD/$CHAT_VAR ;;
	esac
	CHAT_HTTPS_PORT=${CHAT_HTTPS_PORT:-8443}
	CHAT_HTTP_PORT=${CHAT_HTTP_PORT:-8080}
	CHAT_PG_PORT=${CHAT_PG_PORT:-25432}
	CHAT_UPSTREAM_PORT=${CHAT_UPSTREAM_PORT:-8099}
	CHAT_GATEWAY_PORT=${CHAT_GATEWAY_PORT:-8091}
	local port
	for port in "$CHAT_HTTPS_PORT" "$CHAT_HTTP_PORT" "$CHAT_PG_PORT" \
		"$CHAT_UPSTREAM_PORT" "$CHAT_GATEWAY_PORT"; do
		if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
			die "bad port number: '$port'"
		fi
	done
	export CHAT_VAR CHAT_HTTPS_PORT CHAT_HTTP_PORT CHAT_PG_PORT \
		CHAT_UPSTREAM_PORT CHAT_GATEWAY_PORT

	RUN_DIR=$CHAT_VAR/run
	LOG_DIR=$CHAT_VAR/log
	TLS_DIR=$CHAT_VAR/tls
	NGINX_DIR=$CHAT_VAR/nginx
	TLS_CERT=$TLS_DIR/cert.pem
	TLS_KEY=$TLS_DIR/key.pem
	JWT_FILE=$CHAT_VAR/jwt_secret
	# Reply endings of processes that exited while PostgreSQL was down: kept
	# across restarts (not under run/), stored by the next sweep.
	SPOOL_DIR=$CHAT_VAR/spool
	FCGI_SOCKET=$RUN_DIR/chatd.sock
	# The binaries can be swapped, e.g. for a sanitizer build in build-asan/.
	CHATD_BIN=${CHAT_CHATD_BIN:-$CHAT_BUILD/fcgi/chatd}
	CHATD_CONF=${CHAT_CHATD_CONF:-$CHAT_REPO/fcgi/chatd.conf}
	CHATD_PID=$RUN_DIR/chatd.pid
	GATEWAY_BIN=${CHAT_GATEWAY_BIN:-$CHAT_BUILD/gateway/chat-gateway}
	GATEWAY_PID=$RUN_DIR/gateway.pid
	UPSTREAM_BIN=${CHAT_UPSTREAM_BIN:-$CHAT_BUILD/tests/fake_upstream/fake-upstream}
	UPSTREAM_PID=$RUN_DIR/upstream.pid
	NGINX_PID=$RUN_DIR/nginx.pid
	LOADTEST_BIN=$CHAT_BUILD/tests/load/loadtest

	# Unix socket paths are limited to 107 bytes (sun_path); PostgreSQL's
	# is the longer one.
	((${#RUN_DIR} + 20 <= 107)) ||
		die "CHAT_VAR is too deep for unix sockets ($RUN_DIR); set CHAT_VAR to a shorter path"
	pg_paths
}

# var_dirs: creates the state directories (up and test only; down must not
# create anything).
var_dirs() {
	mkdir -p "$CHAT_VAR" "$RUN_DIR" "$LOG_DIR" "$TLS_DIR" "$NGINX_DIR"
	# postgres must be able to walk into $CHAT_VAR (see pg_place).
	chmod 0755 "$CHAT_VAR"
	chmod 0700 "$TLS_DIR"
}

# ---------------------------------------------------------------- packages

# pkg_installed PKG: true when dpkg has PKG fully installed.
pkg_installed() {
	[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = 'ii ' ]
}

# missing_packages [EXTRA...]: prints the Debian packages still needed.
missing_packages() {
	local pkg
	for pkg in "${CHAT_BASE_PACKAGES[@]}" "$@"; do
		pkg_installed "$pkg" || printf '%s\n' "$pkg"
	done
	command -v nginx >/dev/null || printf '%s\n' nginx-light
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || printf '%s\n' postgresql
	# Node 20 may come from elsewhere (NodeSource); Debian's only if absent.
	command -v node >/dev/null || printf '%s\n' nodejs
	command -v npm >/dev/null || printf '%s\n' npm
}

# dpkg_lock_holder [FILE...]: "PID (NAME)" of the process holding dpkg's
# lock (or FILE's), if any. apt and dpkg take POSIX (fcntl) locks, listed
# in /proc/locks by device and inode.
dpkg_lock_holder() {
	local file inode pid
	(($# > 0)) || set -- /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock
	for file in "$@"; do
		inode=$(stat -c %i -- "$file" 2>/dev/null) || continue
		pid=$(awk -v ino="$inode" '$2 == "POSIX" { n = split($6, a, ":"); if (a[n] == ino) { print $5; exit } }' \
			/proc/locks 2>/dev/null)
		if [ -n "$pid" ]; then
			printf '%s (%s)\n' "$pid" "$(cat "/proc/$pid/comm" 2>/dev/null || echo '?')"
			return 0
		fi
	done
	return 1
}

# DPkg::Lock::Timeout: apt waits this long for another apt or dpkg (an
# unattended upgrade, say) instead of failing at once.
APT_LOCK_WAIT=${CHAT_APT_LOCK_WAIT:-600}

# apt_get ARGS...: apt-get that waits for the dpkg lock, saying so.
apt_get() {
	local holder
	if holder=$(dpkg_lock_holder); then
		log "another package manager holds the dpkg lock: pid $holder; waiting for it (up to $APT_LOCK_WAIT s)"
	fi
	apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT" "$@"
}

# install_deps [EXTRA...]: installs whatever is missing, with one apt-get
# update at most, apt's output in $LOG_DIR/apt.log. Not root: lists what
# is missing and fails.
install_deps() {
	local missing
	mapfile -t missing < <(missing_packages "$@")
	((${#missing[@]} == 0)) && return 0
	if ! is_root; then
		die "missing Debian packages (run as root, or: sudo apt-get install ${missing[*]})"
	fi
	log "installing ${#missing[@]} Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	quietly "$LOG_DIR/apt.log" "apt-get update" apt_get update -q || die "apt-get update failed"
	quietly "$LOG_DIR/apt.log" "apt-get install (${#missing[@]} packages)" \
		apt_get install -y -q --no-install-recommends "${missing[@]}" || die "apt-get install failed"
	# Debian starts the system nginx on port 80 right after installing it;
	# we run our own, so stop that one. The system PostgreSQL cluster is
	# left alone (we never use it).
	if printf '%s\n' "${missing[@]}" | grep -qx 'nginx-light'; then
		service nginx stop >/dev/null 2>&1 || true
	fi
}

# ------------------------------------------------------------------- build

# build: configures when needed, then an incremental make, in build/.
# CHAT_NO_BUILD=1 skips it (binaries built elsewhere, see CHAT_CHATD_BIN).
#
# Out of the tree (a VPATH build: configure and Makefile.in stay in the
# sources, everything configure and make write goes to build/), so that
# other configurations can be built next to it from the same sources
# (scripts/test's ASan build in build-asan/): automake refuses a VPATH
# build while the source tree is itself configured, and make would pick up
# the objects of an in-tree build.
build() {
	if [ "${CHAT_NO_BUILD:-}" = 1 ]; then
		log "CHAT_NO_BUILD=1: not building"
		return 0
	fi
	# shellcheck disable=SC2086 # flags is a word list on purpose
	configure_in "$CHAT_BUILD" ${CHAT_CONFIGURE_FLAGS:---enable-werror}
	quietly "$LOG_DIR/build.log" make make -C "$CHAT_BUILD" -j"$(nproc)" || die "the build failed"
}

# configure_in DIR FLAGS...: configures a build in DIR with FLAGS when it
# has none yet. Regenerates configure and Makefile.in in the sources first
# when configure.ac or a Makefile.am changed (then DIR is configured again
# too; other build directories notice it at their next make).
configure_in() {
	local dir=$1 src=$CHAT_REPO
	shift
	if [ -f "$src/config.status" ]; then
		# Left by an older scripts/up, or by ./configure run by hand.
		log "the source tree holds an in-tree build: removing it (make distclean)"
		make -s -C "$src" distclean >/dev/null ||
			die "make distclean failed in $src; remove its build output (config.status, Makefile, objects) by hand"
	fi
	local regen=
	if [ ! -x "$src/configure" ] || [ ! -f "$src/Makefile.in" ] ||
		[ "$src/configure.ac" -nt "$src/configure" ] ||
		[ -n "$(find "$src" -path "$src/tests/node_modules" -prune -o -path "$src/var" -prune -o \
			-path "$src/build*" -prune -o \( -name '*.am' -o -name '*.mk' \) \
			-newer "$src/Makefile.in" -print -quit)" ]; then
		log "generating configure (autoreconf)"
		# shellcheck disable=SC2016 # expanded by the inner bash
		quietly "$LOG_DIR/build.log" autoreconf bash -c 'cd "$1" && autoreconf -fi' autoreconf "$src" ||
			die "autoreconf failed"
		regen=1
	fi
	[ -n "$regen" ] || [ ! -f "$dir/Makefile" ] || return 0
	log "configuring in $dir ($*)"
	mkdir -p "$dir"
	# shellcheck disable=SC2016 # expanded by the inner bash
	quietly "$LOG_DIR/build.log" configure bash -c 'cd "$1" && shift && "$@"' configure "$dir" "$src/configure" "$@" ||
		die "configure failed (details in $dir/config.log)"
}

# web_vendor: the web UI's third-party assets (highlight.js and its two
# GitHub themes), pinned in web-deps/package-lock.json, installed there with
# npm ci when missing or stale and copied to web/vendor/ (git-ignored), from
# where nginx serves them under the strict CSP. Without npm the UI still
# works, with plain code blocks.
web_vendor() {
	local dir=$CHAT_REPO/web-deps out=$CHAT_REPO/web/vendor/highlight
	local pkg=$dir/node_modules/@highlightjs/cdn-assets
	local marker=$dir/node_modules/.package-lock.json
	if [ ! -f "$marker" ] || [ "$dir/package-lock.json" -nt "$marker" ]; then
		if ! command -v npm >/dev/null; then
			warn "npm is missing: the web UI goes without syntax highlighting (apt-get install npm)"
			return 0
		fi
		log "installing the web UI's pinned assets (npm ci in web-deps/)"
		# scripts/test points NODE_EXTRA_CA_CERTS at its own certificate;
		# npm keeps the machine's (NPM_EXTRA_CA_CERTS, as scripts/test saved it).
		local ca=${NPM_EXTRA_CA_CERTS-${NODE_EXTRA_CA_CERTS:-}} ok=1
		if [ -n "$ca" ]; then
			NODE_EXTRA_CA_CERTS=$ca npm ci --prefix "$dir" --no-audit --no-fund >&2 || ok=
		else
			env -u NODE_EXTRA_CA_CERTS npm ci --prefix "$dir" --no-audit --no-fund >&2 || ok=
		fi
		[ -n "$ok" ] ||
			{ warn "npm ci in web-deps/ failed: the web UI goes without syntax highlighting"; return 0; }
	fi
	mkdir -p "$out" || die "cannot create $out"
	local f
	for f in es/highlight.min.js styles/github.min.css styles/github-dark.min.css LICENSE; do
		cmp -s "$pkg/$f" "$out/${f##*/}" || cp "$pkg/$f" "$out/${f##*/}" ||
			die "copying $f into web/vendor/ failed"
	done
}

# build_loadtest: tests/load/loadtest alone (for scripts/loadtest and
# scripts/bench), quietly, its output on stderr (scripts/loadtest's stdout
# may carry JSON). CHAT_NO_BUILD=1: it only has to be there.
build_loadtest() {
	if [ "${CHAT_NO_BUILD:-}" != 1 ]; then
		[ -f "$CHAT_BUILD/Makefile" ] || build >&2
		make -s -C "$CHAT_BUILD" tests/load/loadtest >&2 || die "building tests/load/loadtest failed"
	fi
	[ -x "$LOADTEST_BIN" ] || die "$LOADTEST_BIN is not built"
}

# --------------------------------------------------------------- processes

# pid_of FILE: prints the pid recorded in FILE, if it looks like one.
pid_of() {
	local pid
	[ -r "$1" ] || return 1
	read -r pid <"$1" || true
	[[ ${pid:-} =~ ^[0-9]+$ ]] || return 1
	printf '%s\n' "$pid"
}

# pid_running PID: alive and not a zombie (a killed daemon stays a zombie
# until init reaps it, and kill -0 still succeeds on it).
pid_running() {
	local state
	state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

# pid_alive FILE NAME: true when the pid in FILE runs a program whose
# command line mentions NAME (guards against a stale file and pid reuse).
pid_alive() {
	local pid
	pid=$(pid_of "$1") || return 1
	pid_running "$pid" || return 1
	grep -qa -- "$2" "/proc/$pid/cmdline" 2>/dev/null
}

# pid_gone PID: the opposite of pid_running.
pid_gone() { ! pid_running "$1"; }

# wait_until TIMEOUT CMD...: runs CMD every 0.2 s until it succeeds, for up
# to TIMEOUT seconds. CMD returning 2 means there is no use waiting (the
# process it waits for is gone): then wait_until fails at once.
wait_until() {
	local deadline=$((SECONDS + $1)) rc
	shift
	while :; do
		rc=0
		"$@" || rc=$?
		((rc == 0)) && return 0
		((rc != 2 && SECONDS < deadline)) || return 1
		sleep 0.2
	done
}

# ---------------------------------------------------------------- services
#
# Every service starts through service_start and (but PostgreSQL, which
# pg_ctl stops) stops through service_stop. The ones we run in the
# foreground of their own session (the fake upstream, chatd, the gateway)
# are launched with spawn and keep a stamp (see unchanged) so that up
# restarts them only when their inputs changed.

# service_start LABEL ADDRESS LOG TIMEOUT READY... -- CMD...: logs
# "starting LABEL on ADDRESS", runs CMD... (which starts the service in the
# background and returns: spawn, or a daemon that forks itself, like
# pg_ctl and nginx), then waits up to TIMEOUT seconds for READY... to
# succeed (see wait_until: READY returns 2 when the service is gone). When
# CMD fails or READY does not succeed in time: the tail of LOG and
# "LABEL did not start".
service_start() {
	local label=$1 address=$2 logfile=$3 timeout=$4 ready=()
	shift 4
	while (($# > 0)) && [ "$1" != -- ]; do
		ready+=("$1")
		shift
	done
	(($# > 0)) || die "service_start $label: no -- before the command"
	shift
	log "starting $label on $address"
	if ! "$@" || ! wait_until "$timeout" "${ready[@]}"; then
		die_with_log "$logfile" "$label did not start"
	fi
}

# spawned_ready PIDFILE PROG [URL]: READY for service_start of a spawned
# service: 2 (gone) once the process spawn recorded in PIDFILE has exited;
# ready when it runs PROG and URL (if any) answers with any HTTP status
# (401 from a keyed fake upstream still means "up").
spawned_ready() {
	# No name check first: just after the fork the child is not yet PROG.
	pid_running "$(pid_of "$1")" || return 2
	pid_alive "$1" "$2" || return 1
	[ -z "${3:-}" ] && return 0
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -- "$3" 2>/dev/null) || true
	[ "${code:-000}" != 000 ]
}

# service_stop LABEL PIDFILE PROG SIGNAL TIMEOUT: sends SIGNAL, waits up to
# TIMEOUT seconds, then SIGKILLs the whole process group (children too).
# The service's stamp beside PIDFILE goes too.
service_stop() {
	local label=$1 file=$2 name=$3 sig=$4 timeout=$5 pid
	rm -f "${file%.pid}.stamp"
	if ! pid_alive "$file" "$name"; then
		rm -f "$file"
		return 0
	fi
	pid=$(pid_of "$file")
	log "stopping $label (pid $pid)"
	kill -"$sig" "$pid" 2>/dev/null || true
	if ! wait_until "$timeout" pid_gone "$pid"; then
		warn "$label did not stop within ${timeout}s; killing it"
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		sleep 0.5
	fi
	rm -f "$file"
}

# spawn PIDFILE LOGFILE CMD...: runs CMD in its own session (so Ctrl-C on
# the calling terminal does not reach it and it outlives this script),
# output appended to LOGFILE, and records its pid.
spawn() {
	local pidfile=$1 logfile=$2
	shift 2
	printf '\n---- %s starting: %s\n' "$(date -Is)" "$(basename -- "$1")" >>"$logfile"
	setsid "$@" >>"$logfile" 2>&1 </dev/null &
	printf '%s\n' "$!" >"$pidfile"
}

# stamp TEXT...: a short hash that changes when a service's inputs change.
stamp() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

# file_stamp FILE: identity of a file's current version (missing is fine).
file_stamp() { stat -c '%n %s %Y %i' -- "$1" 2>/dev/null || printf '%s missing\n' "$1"; }

# env_stamp: the environment knobs our daemons read.
env_stamp() {
	env | LC_ALL=C sort | grep -E '^(CHAT_|OPENAI_|JWT_|DATABASE_URL=|LIVEKIT_)' || true
}

# unchanged LABEL ADDRESS PIDFILE PROG STAMP: true, with "LABEL already
# running on ADDRESS", when the service is running with the same stamp as
# when it was started (then up leaves it alone).
unchanged() {
	if pid_alive "$3" "$4" && [ "$(cat "${3%.pid}.stamp" 2>/dev/null)" = "$5" ]; then
		log "$1 already running on $2, unchanged"
		return 0
	fi
	return 1
}

# stamp_save PIDFILE STAMP: records STAMP for unchanged, once the service
# is up.
stamp_save() { printf '%s\n' "$2" >"${1%.pid}.stamp"; }

# http_ok URL [CURL_ARGS...]: true when URL answers 200.
http_ok() {
	local url=$1
	shift
	curl -fsS -o /dev/null --max-time 3 "$@" -- "$url" 2>/dev/null || return 1
}

# wait_http URL TIMEOUT [CURL_ARGS...]: waits for a 200 from URL.
wait_http() {
	local url=$1 timeout=$2
	shift 2
	wait_until "$timeout" http_ok "$url" "$@"
}

# wait_healthy WHAT: waits up to 30 s for /healthz through nginx (HTTPS);
# when it does not answer, the logs that say why and "WHAT did not become
# healthy within 30 s".
wait_healthy() {
	local url=https://127.0.0.1:$CHAT_HTTPS_PORT/healthz
	log "waiting for $url"
	if ! wait_http "$url" 30 --cacert "$TLS_CERT"; then
		show_log "$LOG_DIR/chatd.log"
		show_log "$LOG_DIR/nginx-error.log" 20
		die "$1 did not become healthy within 30 s"
	fi
}

# need_port PORT WHAT: fails early, with a clear message, when something
# else already listens on 127.0.0.1:PORT (instead of a bind error deep in
# a log file).
need_port() {
	if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
		die "port $1 ($2) is already in use by another program; pick another with the CHAT_*_PORT variables"
	fi
}

# -------------------------------------------------------------- PostgreSQL

# pg_paths: where the local cluster lives. Normally $CHAT_VAR/pg with its
# socket in $RUN_DIR; if pg_place had to move it out (see there),
# $CHAT_VAR/pg is a symlink to the real place.
pg_paths() {
	PG_DATA=$CHAT_VAR/pg
	PG_SOCKDIR=$RUN_DIR
	PG_LOG=$LOG_DIR/postgresql.log
	if [ -L "$PG_DATA" ]; then
		local base
		base=$(dirname -- "$(readlink -f -- "$PG_DATA")")
		PG_DATA=$base/pg
		PG_SOCKDIR=$base/run
		PG_LOG=$base/postgresql.log
	fi
}

# pg_bindir: the newest installed PostgreSQL's bin directory.
pg_bindir() {
	local dirs
	dirs=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1)
	[ -x "$dirs/initdb" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
	printf '%s\n' "$dirs"
}

# as_pg CMD...: PostgreSQL refuses to run as root, so as root the cluster
# belongs to the `postgres` OS user; otherwise it is the caller's own.
as_pg() {
	if is_root; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# pg_own PATH...: hands PATH to the cluster's OS user.
pg_own() {
	if is_root; then chown postgres:postgres -- "$@"; fi
}

# pg_place: as root, postgres must reach $CHAT_VAR. When the checkout sits
# under a private directory (e.g. /root, mode 0700) it cannot, and we do not
# loosen the permissions of the user's home: the cluster then lives in
# /var/lib/chat-dev/<hash of CHAT_VAR>/ and $CHAT_VAR/pg links to it.
pg_place() {
	[ -e "$PG_DATA" ] && return 0
	if is_root; then
		mkdir -p "$PG_DATA"
		if ! runuser -u postgres -- test -x "$PG_DATA" 2>/dev/null; then
			rmdir "$PG_DATA"
			local base
			base=/var/lib/chat-dev/$(printf '%s' "$CHAT_VAR" | sha256sum | cut -c1-12)
			warn "postgres cannot reach $CHAT_VAR; putting the cluster in $base"
			mkdir -p "$base/pg" "$base/run"
			pg_own "$base" "$base/pg" "$base/run"
			ln -sfn "$base/pg" "$CHAT_VAR/pg"
			ln -sfn "$base/postgresql.log" "$LOG_DIR/postgresql.log"
			pg_paths
		fi
	else
		mkdir -p "$PG_DATA"
	fi
}

# pg_init: creates the cluster. Trust authentication on the unix socket and
# loopback only: this is a throwaway development cluster that listens on
# 127.0.0.1 alone; never copy these settings to a real server.
pg_init() {
	pg_place
	log "creating a PostgreSQL cluster in $PG_DATA"
	pg_own "$PG_DATA"
	chmod 0700 "$PG_DATA"
	as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust \
		-E UTF8 --locale=C.UTF-8 >"$LOG_DIR/initdb.log" 2>&1 ||
		die_with_log "$LOG_DIR/initdb.log" "initdb failed"
	# Our settings live in their own file, rewritten at every start.
	printf "\n# scripts/up writes chat-local.conf\ninclude_if_exists = 'chat-local.conf'\n" \
		>>"$PG_DATA/postgresql.conf"
}

# pg_write_conf: (re)writes chat-local.conf; true when it changed.
pg_write_conf() {
	local conf=$PG_DATA/chat-local.conf new
	new=$(
		cat <<EOF
# Written by scripts/up; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $CHAT_PG_PORT
unix_socket_directories = '$PG_SOCKDIR'
# The load tests open many streams, each worker thread holding a connection.
max_connections = 400
shared_buffers = 256MB
# Durability stays on: tests must see what production would.
fsync = on
synchronous_commit = on
EOF
		# CHAT_PG_STATS=1: pg_stat_statements, statements inside functions
		# and triggers included (README, Performance: what a stream costs).
		if [ "${CHAT_PG_STATS:-0}" = 1 ]; then
			printf '%s\n' "shared_preload_libraries = 'pg_stat_statements'" \
				"pg_stat_statements.track = all" "pg_stat_statements.max = 10000"
		fi
	)
	[ -f "$conf" ] && [ "$(cat "$conf")" = "$new" ] && return 1
	printf '%s\n' "$new" >"$conf"
	pg_own "$conf"
	return 0
}

pg_running() {
	[ -f "$PG_DATA/postmaster.pid" ] &&
		as_pg "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

# pg_start: creates the cluster if needed and starts it (restarts it when
# its settings changed, e.g. a new CHAT_PG_PORT).
pg_start() {
	PG_BIN=$(pg_bindir)
	[ -f "$PG_DATA/PG_VERSION" ] || pg_init
	# The server writes its socket and lock file into $PG_SOCKDIR.
	if is_root && [ "$PG_SOCKDIR" = "$RUN_DIR" ]; then
		chgrp postgres "$RUN_DIR"
		chmod 0775 "$RUN_DIR"
	fi
	[ -e "$PG_LOG" ] || : >"$PG_LOG"
	pg_own "$PG_LOG"
	if pg_write_conf && pg_running; then
		log "PostgreSQL settings changed: restarting"
		pg_stop
	elif pg_running; then
		log "PostgreSQL already running on 127.0.0.1:$CHAT_PG_PORT"
		return 0
	fi
	need_port "$CHAT_PG_PORT" "CHAT_PG_PORT"
	# pg_ctl -w returns once the server accepts connections.
	service_start PostgreSQL "127.0.0.1:$CHAT_PG_PORT" "$PG_LOG" 5 pg_running -- pg_launch
}

# pg_launch: pg_ctl start. A port inside Linux's ephemeral range
# (32768-60999, e.g. the default 55432) can be held for up to 60 s by a
# closed outgoing connection in TIME_WAIT; PostgreSQL then cannot bind it.
# Nothing listens, so it waits and tries again.
pg_launch() {
	local deadline=$((SECONDS + 70)) lines
	while :; do
		lines=$(wc -l <"$PG_LOG")
		as_pg "$PG_BIN/pg_ctl" start -w -t 60 -D "$PG_DATA" -l "$PG_LOG" >/dev/null 2>&1 && return 0
		if ((SECONDS >= deadline)) ||
			! grep -q 'could not bind.*Address already in use' < <(tail -n +"$((lines + 1))" "$PG_LOG"); then
			return 1
		fi
		need_port "$CHAT_PG_PORT" "CHAT_PG_PORT"
		log "port $CHAT_PG_PORT is still held by a closed connection (TIME_WAIT); retrying in 5 s"
		sleep 5
	done
}

pg_stop() {
	[ -f "$PG_DATA/PG_VERSION" ] || return 0
	PG_BIN=$(pg_bindir)
	pg_running || return 0
	log "stopping PostgreSQL"
	as_pg "$PG_BIN/pg_ctl" stop -w -t 60 -m fast -D "$PG_DATA" >/dev/null
}

# psql_admin ARGS...: psql as the cluster's superuser.
psql_admin() {
	PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "$CHAT_PG_PORT" -U postgres -d postgres "$@"
}

# pg_ensure_db: role `chat` and database `chat` owned by it.
pg_ensure_db() {
	psql_admin <<'SQL'
SELECT 'CREATE ROLE chat LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chat')\gexec
SELECT 'CREATE DATABASE chat OWNER chat' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'chat')\gexec
SQL
}

# pg_reset_db: drops and recreates database `chat` (test runs start clean).
pg_reset_db() {
	log "recreating the database chat"
	psql_admin -c 'DROP DATABASE IF EXISTS chat WITH (FORCE)'
	pg_ensure_db
}

local_database_url() { printf 'postgresql://chat@127.0.0.1:%s/chat\n' "$CHAT_PG_PORT"; }

# ---------------------------------------------------------------- secrets

# tls_cert: a self-signed certificate for localhost / 127.0.0.1 / ::1,
# regenerated when missing or about to expire.
tls_cert() {
	if [ -s "$TLS_CERT" ] && [ -s "$TLS_KEY" ] &&
		openssl x509 -checkend 86400 -noout -in "$TLS_CERT" >/dev/null 2>&1; then
		return 0
	fi
	log "generating a self-signed TLS certificate in $TLS_DIR"
	(
		umask 077
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -noenc \
			-days 825 -subj '/CN=localhost' \
			-addext 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1' \
			-keyout "$TLS_KEY.tmp" -out "$TLS_CERT.tmp" 2>"$LOG_DIR/openssl.log"
	) || die_with_log "$LOG_DIR/openssl.log" "openssl failed"
	chmod 0600 "$TLS_KEY.tmp"
	chmod 0644 "$TLS_CERT.tmp"
	mv -f "$TLS_KEY.tmp" "$TLS_KEY"
	mv -f "$TLS_CERT.tmp" "$TLS_CERT"
}

# jwt_secret: a random signing key for local use, unless JWT_SECRET is set.
jwt_secret() {
	[ -n "${JWT_SECRET:-}" ] && return 0
	[ -s "$JWT_FILE" ] && return 0
	log "generating the JWT secret $JWT_FILE"
	(
		umask 077
		openssl rand -hex 32 >"$JWT_FILE.tmp"
	)
	mv -f "$JWT_FILE.tmp" "$JWT_FILE"
}

# ---------------------------------------------------------------- upstream

# upstream_origin URL: scheme://host[:port] of a base URL (for the CSP).
upstream_origin() { printf '%s\n' "$1" | sed -E 's#^([A-Za-z][A-Za-z0-9+.-]*://[^/?#]+).*#\1#'; }

# upstream_start ARGS...: the fake OpenAI upstream on CHAT_UPSTREAM_PORT,
# with extra ARGS (--api-key, --delay-ms, --quiet).
upstream_start() {
	[ -x "$UPSTREAM_BIN" ] ||
		die "$UPSTREAM_BIN is not built (see the build output above)"
	local args=(--listen "127.0.0.1:$CHAT_UPSTREAM_PORT" "$@") st
	local label='the fake upstream' address=127.0.0.1:$CHAT_UPSTREAM_PORT
	st=$(stamp "$(file_stamp "$UPSTREAM_BIN")" "${args[@]}")
	unchanged "$label" "$address" "$UPSTREAM_PID" fake-upstream "$st" && return 0
	upstream_stop
	need_port "$CHAT_UPSTREAM_PORT" "CHAT_UPSTREAM_PORT"
	service_start "$label" "$address" "$LOG_DIR/upstream.log" 10 \
		spawned_ready "$UPSTREAM_PID" fake-upstream "http://$address/v1/models" -- \
		spawn "$UPSTREAM_PID" "$LOG_DIR/upstream.log" "$UPSTREAM_BIN" "${args[@]}"
	stamp_save "$UPSTREAM_PID" "$st"
}

upstream_stop() { service_stop 'the fake upstream' "$UPSTREAM_PID" fake-upstream TERM 5; }

# ------------------------------------------------------------ chatd, gateway

# with_app_env CMD...: runs CMD with the environment chatd and the gateway
# read. Exported in a subshell, never passed on a command line, so secrets
# do not show up in `ps`.
with_app_env() {
	(
		export CHAT_LISTEN=$FCGI_SOCKET
		export CHAT_PID_FILE=$CHATD_PID
		export CHAT_SPOOL_DIR=$SPOOL_DIR
		export DATABASE_URL OPENAI_BASE_URL
		export CHAT_DEV_MODE=${CHAT_DEV_MODE:-1}
		if [ -n "${OPENAI_API_KEY:-}" ]; then export OPENAI_API_KEY; fi
		if [ -z "${JWT_SECRET:-}" ]; then export JWT_SECRET_FILE=$JWT_FILE; fi
		"$@"
	)
}

# chatd_start: the FastCGI pool, in the background, on $FCGI_SOCKET.
# Needs DATABASE_URL and OPENAI_BASE_URL set.
chatd_start() {
	[ -x "$CHATD_BIN" ] || die "$CHATD_BIN is not built (see the build output above)"
	[ -f "$CHATD_CONF" ] || die "$CHATD_CONF is missing"
	local st
	st=$(stamp "$(file_stamp "$CHATD_BIN")" "$(file_stamp "$CHATD_CONF")" \
		"$(env_stamp)" "$DATABASE_URL" "$OPENAI_BASE_URL" "${OPENAI_API_KEY:-}")
	unchanged chatd "$FCGI_SOCKET" "$CHATD_PID" chatd "$st" && return 0
	chatd_stop
	# A stale socket would look like readiness below; chatd re-creates it.
	rm -f "$CHATD_PID" "$FCGI_SOCKET"
	service_start chatd "$FCGI_SOCKET" "$LOG_DIR/chatd.log" 20 chatd_ready -- chatd_spawn
	stamp_save "$CHATD_PID" "$st"
}

# chatd_spawn: chatd in the background with the app's environment. chatd
# writes its own pid file once it listens; CHATD_SPAWNED_PID is what was
# spawned, to notice it dying before that.
chatd_spawn() {
	local file=$RUN_DIR/chatd.spawn.pid
	with_app_env spawn "$file" "$LOG_DIR/chatd.log" "$CHATD_BIN" -c "$CHATD_CONF"
	CHATD_SPAWNED_PID=$(pid_of "$file")
	rm -f "$file"
}

# chatd_ready: ready enough for nginx once chatd has written its pid file
# and bound the socket; /healthz through nginx is checked by the caller.
chatd_ready() {
	# No name check here: just after the fork the child is not yet chatd.
	pid_running "$CHATD_SPAWNED_PID" || return 2
	pid_alive "$CHATD_PID" chatd && [ -S "$FCGI_SOCKET" ]
}

# stop_timeout: seconds to wait for chatd (or the gateway) to drain its
# streams after SIGTERM: CHAT_STOP_TIMEOUT, else chatd's drain deadline
# (CHAT_DRAIN_TIMEOUT, or drain_timeout in chatd.conf, default 60) + 10.
stop_timeout() {
	if [ -n "${CHAT_STOP_TIMEOUT:-}" ]; then
		printf '%s\n' "$CHAT_STOP_TIMEOUT"
		return 0
	fi
	local drain=${CHAT_DRAIN_TIMEOUT:-}
	if [ -z "$drain" ] && [ -r "$CHATD_CONF" ]; then
		drain=$(sed -nE 's/^[[:space:]]*drain_timeout[[:space:]]*=[[:space:]]*([0-9]+).*/\1/p' \
			"$CHATD_CONF" | tail -n1)
	fi
	[[ ${drain:-} =~ ^[0-9]+$ ]] || drain=60
	printf '%s\n' $((drain + 10))
}

# chatd_stop: SIGTERM drains in-flight streams; SIGKILL after stop_timeout.
chatd_stop() { service_stop chatd "$CHATD_PID" chatd TERM "$(stop_timeout)"; }

# gateway_start: the Socket.IO gateway, only if it has been built.
gateway_start() {
	if [ ! -x "$GATEWAY_BIN" ]; then
		log "gateway/chat-gateway not built: /socket.io/ stays unavailable"
		return 0
	fi
	local st label='the gateway' address=127.0.0.1:$CHAT_GATEWAY_PORT
	st=$(stamp "$(file_stamp "$GATEWAY_BIN")" "$(file_stamp "$CHATD_CONF")" \
		"$(env_stamp)" "$DATABASE_URL" "$OPENAI_BASE_URL" "${OPENAI_API_KEY:-}")
	unchanged "$label" "$address" "$GATEWAY_PID" chat-gateway "$st" && return 0
	gateway_stop
	need_port "$CHAT_GATEWAY_PORT" "CHAT_GATEWAY_PORT"
	# The gateway's peer is always nginx on loopback, unlike chatd's
	# REMOTE_ADDR (the client nginx saw): it trusts loopback too, so the
	# client address for rate limits comes from X-Forwarded-For.
	# The recorded pid is the supervisor's (gateway_supervise); its command
	# line names chat-gateway, so pid_alive and service_stop work on it.
	CHAT_GATEWAY_LISTEN=$address \
		CHAT_TRUSTED_PROXIES=127.0.0.1${CHAT_TRUSTED_PROXIES:+,$CHAT_TRUSTED_PROXIES} \
		service_start "$label" "$address" "$LOG_DIR/gateway.log" 15 \
		spawned_ready "$GATEWAY_PID" chat-gateway "http://$address/gateway/status" -- \
		with_app_env spawn "$GATEWAY_PID" "$LOG_DIR/gateway.log" \
		bash -c "$(declare -f gateway_supervise); gateway_supervise \"\$@\"" \
		chat-gateway-supervisor "$GATEWAY_BIN" -c "$CHATD_CONF"
	stamp_save "$GATEWAY_PID" "$st"
}

# gateway_supervise CMD...: runs the gateway CMD and starts it again one
# second after it dies on its own (a crash must not leave /socket.io/ down
# until the next scripts/up). SIGTERM/SIGINT go to the gateway, which
# drains its streams, and end the loop. Gives up after 5 deaths within a
# minute (a broken configuration), leaving the log to say why.
gateway_supervise() {
	local child='' stopping='' rc deaths=0 since=$SECONDS
	trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT
	while :; do
		"$@" &
		child=$!
		wait "$child"
		rc=$?
		# A trapped signal ends `wait` early: wait for the gateway itself.
		while kill -0 "$child" 2>/dev/null; do
			wait "$child"
			rc=$?
		done
		[ -n "$stopping" ] && exit 0
		if ((SECONDS - since > 60)); then
			deaths=0
			since=$SECONDS
		fi
		deaths=$((deaths + 1))
		if ((deaths >= 5)); then
			printf '%s chat-gateway died %d times within a minute; giving up\n' "$(date -Is)" "$deaths"
			exit 1
		fi
		printf '%s chat-gateway exited (status %s); restarting in 1 s\n' "$(date -Is)" "$rc"
		sleep 1
	done
}

gateway_stop() { service_stop 'the gateway' "$GATEWAY_PID" chat-gateway TERM "$(stop_timeout)"; }

# ------------------------------------------------------------------- nginx

# sed_escape TEXT: TEXT made safe as a sed replacement (delimiter |).
sed_escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

# render TEMPLATE OUTPUT NAME=VALUE...: replaces each @NAME@; true when
# OUTPUT changed. Only @NAME@ placeholders are touched, never nginx's own
# $variables.
render() {
	local in=$1 out=$2 pair
	shift 2
	local args=()
	for pair in "$@"; do
		args+=(-e "s|@${pair%%=*}@|$(sed_escape "${pair#*=}")|g")
	done
	sed "${args[@]}" -- "$in" >"$out.tmp"
	if grep -qE '@[A-Z_]+@' "$out.tmp"; then
		grep -nE '@[A-Z_]+@' "$out.tmp" >&2
		die "unfilled placeholder in $out (from $in)"
	fi
	if cmp -s "$out.tmp" "$out"; then
		rm -f "$out.tmp"
		return 1
	fi
	mv -f "$out.tmp" "$out"
}

# render_nginx: writes $NGINX_DIR/{nginx,chat,chat-routes}.conf from the
# templates in nginx/; sets NGINX_CONF_CHANGED=1 when any of them changed.
# Needs OPENAI_BASE_URL (its origin goes into the CSP for WebRTC).
# nginx_at_least VERSION: true if the installed nginx is VERSION or newer.
nginx_at_least() {
	local have
	have=$(nginx -v 2>&1 | sed -n 's|^nginx version: nginx/\([0-9.]*\).*|\1|p')
	[ -n "$have" ] && [ "$(printf '%s\n%s\n' "$1" "$have" | sort -V | head -n1)" = "$1" ]
}

render_nginx() {
	local user_line='# not root: workers run as the invoking user'
	if is_root; then
		# Workers must reach chatd's socket (mode 0660, owned by whoever
		# runs up) and web/ (which may sit under a private home), so they
		# run as that user. Local development only.
		user_line="user $(id -un) $(id -gn);"
	fi
	# HTTP/2: nginx 1.25.1 moved it from the listen line to `http2 on;`
	# (the old form still works there, with a deprecation warning).
	local listen_http2=' http2' http2_line='# HTTP/2 is on the listen line (nginx < 1.25.1)'
	if nginx_at_least 1.25.1; then
		listen_http2=''
		http2_line='http2 on;'
	fi
	# nginx cannot raise its descriptor limit past the hard limit (not
	# even root in a container): ask for no more than that.
	local nofile=65536 hard
	hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && ((hard < nofile)); then nofile=$hard; fi
	local vars=(
		"USER_LINE=$user_line"
		"NOFILE=$nofile"
		"NGINX_DIR=$NGINX_DIR"
		"LOG_DIR=$LOG_DIR"
		"NGINX_PID=$NGINX_PID"
		"SITE_CONF=$NGINX_DIR/chat.conf"
		"ROUTES_CONF=$NGINX_DIR/chat-routes.conf"
		"MIME_TYPES=/etc/nginx/mime.types"
		"FASTCGI_PARAMS=/etc/nginx/fastcgi_params"
		"SERVER_NAME=localhost"
		"HTTPS_PORT=$CHAT_HTTPS_PORT"
		"HTTP_PORT=$CHAT_HTTP_PORT"
		"GATEWAY_PORT=$CHAT_GATEWAY_PORT"
		"FCGI_SOCKET=$FCGI_SOCKET"
		"TLS_CERT=$TLS_CERT"
		"TLS_KEY=$TLS_KEY"
		"WEB_ROOT=$CHAT_REPO/web"
		"CSP_CONNECT_EXTRA=$(upstream_origin "$OPENAI_BASE_URL")"
		"CONN_PER_ADDR=${CHAT_NGINX_CONN_PER_ADDR:-256}"
		"LISTEN_HTTP2=$listen_http2"
		"HTTP2_LINE=$http2_line"
	)
	NGINX_CONF_CHANGED=
	local name
	for name in nginx chat chat-routes; do
		if render "$CHAT_REPO/nginx/$name.conf.in" "$NGINX_DIR/$name.conf" "${vars[@]}"; then
			NGINX_CONF_CHANGED=1
		fi
	done
}

nginx_cmd() { nginx -p "$NGINX_DIR/" -c "$NGINX_DIR/nginx.conf" -e "$LOG_DIR/nginx-error.log" "$@"; }

# nginx_start: renders the config, checks it, then starts nginx, or
# reloads a running one (gracefully, SIGHUP) when the config or the
# certificate changed.
nginx_start() {
	render_nginx
	nginx_cmd -t -q 2>"$LOG_DIR/nginx-test.log" ||
		die_with_log "$LOG_DIR/nginx-test.log" "the generated nginx config is invalid ($NGINX_DIR)"
	if pid_alive "$NGINX_PID" nginx; then
		if [ -n "$NGINX_CONF_CHANGED" ] || [ "$TLS_CERT" -nt "$NGINX_PID" ]; then
			log "nginx config changed: reloading"
			kill -HUP "$(pid_of "$NGINX_PID")"
			touch "$NGINX_PID"
		else
			log "nginx already running"
		fi
		return 0
	fi
	need_port "$CHAT_HTTPS_PORT" "CHAT_HTTPS_PORT"
	need_port "$CHAT_HTTP_PORT" "CHAT_HTTP_PORT"
	# nginx daemonizes itself (after binding its ports) and its daemon then
	# writes $NGINX_PID; its errors go to nginx-error.log (-e), stderr only
	# repeats them.
	rm -f "$NGINX_PID"
	service_start nginx ":$CHAT_HTTPS_PORT (HTTPS) and :$CHAT_HTTP_PORT (HTTP)" \
		"$LOG_DIR/nginx-start.log" 10 pid_alive "$NGINX_PID" nginx -- \
		nginx_launch
}

nginx_launch() { nginx_cmd >/dev/null 2>"$LOG_DIR/nginx-start.log"; }

# nginx_stop: SIGQUIT = finish current requests, then exit (the main
# config bounds that with worker_shutdown_timeout).
nginx_stop() { service_stop nginx "$NGINX_PID" nginx QUIT 20; }

# ------------------------------------------------------------- whole stack

# stack_stop: everything, in the order that lets in-flight streams drain:
# the app servers first (nginx still carries their last bytes, the upstream
# and the database still answer them), then nginx, upstream, database.
stack_stop() {
	services_stop
	pg_stop
}

# services_stop: all but PostgreSQL, in that order.
services_stop() {
	gateway_stop
	chatd_stop
	nginx_stop
	upstream_stop
}
