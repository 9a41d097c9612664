#!/usr/bin/env bash
# Scripted checks of the edgepos .deb packages, run as root on a machine
# where systemd is NOT running (a CI container): build both packages for
# amd64 and arm64, inspect them, then install, upgrade, remove and purge the
# amd64 packages for real with dpkg and check what each step leaves.
#
#   packaging/ci-check.sh            build from the working tree
#   packaging/ci-check.sh -r HEAD    build a commit (git archive), see build.sh
#
# It refuses to start if an edgepos package, /etc/edgepos or the data
# directories already exist (it would destroy them), and it cleans up after
# itself: no edgepos package stays installed, the user edgepos is deleted
# again if this script created it, and only dist/ keeps the .deb files.
# Exit status 0 only if every check passed; each failure is printed as FAIL.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/dist
BUILD_ARGS=("$@")

failures=0
ok() { printf '  ok   %s\n' "$*"; }
fail() { printf '  FAIL %s\n' "$*" >&2; failures=$((failures + 1)); }
step() { printf '\n--- %s\n' "$*"; }
die() { printf 'ci-check: FATAL: %s\n' "$*" >&2; exit 1; }

# check DESC CMD...: CMD must succeed.
check() {
    local desc=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$desc"; else fail "$desc  [$*]"; fi
}
# expect_fail DESC SUBSTRING CMD...: CMD must exit non-zero and print
# SUBSTRING (stdout or stderr).
expect_fail() {
    local desc=$1 want=$2 out rc=0
    shift 2
    out=$("$@" 2>&1) || rc=$?
    if ((rc == 0)); then
        fail "$desc: exit 0, want non-zero"
    elif [[ $out != *"$want"* ]]; then
        fail "$desc: exit $rc but no \"$want\" in: $out"
    else
        ok "$desc (exit $rc: $(grep -F -m1 -- "$want" <<<"$out"))"
    fi
}
status_of() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true; }
mode_of() { stat -c '%U:%G %a' "$1" 2>/dev/null || echo missing; }
# check_eq DESC GOT WANT
check_eq() { if [[ $2 == "$3" ]]; then ok "$1 ($2)"; else fail "$1: got \"$2\", want \"$3\""; fi; }

# --- preconditions ---------------------------------------------------------
[[ $(id -u) == 0 ]] || die "run as root (dpkg -i)"
[[ ! -d /run/systemd/system ]] ||
    die "systemd is running here: installing would start services on this machine; run in a container without systemd"
for p in pos-agent hq-ingest; do
    s=$(status_of "$p")
    [[ -z $s || $s == not-installed ]] || die "package $p is $s here; refusing to touch it"
done
for d in /etc/edgepos /var/lib/edgepos /var/lib/edgepos-hq; do
    [[ ! -e $d ]] || die "$d exists; refusing to run over it"
done
created_user=
getent passwd edgepos >/dev/null || created_user=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/edgepos-ci.XXXXXX")
cleanup() {
    local rc=$?
    for p in pos-agent hq-ingest; do
        s=$(status_of "$p")
        if [[ -n $s && $s != not-installed ]]; then
            dpkg -P "$p" >/dev/null 2>&1 || echo "ci-check: cleanup: dpkg -P $p failed" >&2
        fi
    done
    if [[ -n $created_user ]] && getent passwd edgepos >/dev/null; then
        userdel edgepos 2>/dev/null || true
        if getent group edgepos >/dev/null; then groupdel edgepos 2>/dev/null || true; fi
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

start=$(date +%s)

# --- build -----------------------------------------------------------------
step "build pos-agent and hq-ingest for amd64 and arm64"
# gzip: these packages are thrown away; xz costs seconds per package.
export DEB_COMPRESS=${DEB_COMPRESS:-gzip}
V1=$("$ROOT/packaging/build.sh" "${BUILD_ARGS[@]}" --print-version)
"$ROOT/packaging/build.sh" "${BUILD_ARGS[@]}" -o "$OUT" >"$WORK/built" ||
    die "packaging/build.sh failed (see above)"
cat "$WORK/built"
# A later version for the upgrade test: only pos-agent amd64 (a relink).
V2=$V1.1
dpkg --compare-versions "$V2" gt "$V1" || die "$V2 does not sort after $V1"
"$ROOT/packaging/build.sh" "${BUILD_ARGS[@]}" -v "$V2" -a amd64 -p pos-agent -o "$WORK/v2" >/dev/null ||
    die "packaging/build.sh -v $V2 failed"
deb() { echo "$OUT/${1}_${V1}_$2.deb"; }
AGENT_V2=$WORK/v2/pos-agent_${V2}_amd64.deb
printf 'built in %ss: version %s, upgrade version %s\n' "$(($(date +%s) - start))" "$V1" "$V2"

# --- inspect ---------------------------------------------------------------
step "inspect the packages (dpkg-deb -I / -c)"
if command -v shellcheck >/dev/null; then
    check "build.sh and ci-check.sh pass shellcheck" shellcheck -S warning "$ROOT/packaging/build.sh" "$ROOT/packaging/ci-check.sh"
else
    echo "  skip shellcheck not installed (apt-get install shellcheck)"
fi
for pkg in pos-agent hq-ingest; do
    for arch in amd64 arm64; do
        f=$(deb "$pkg" "$arch")
        if [[ ! -f $f ]]; then fail "$f was not built"; continue; fi
        echo "== $(basename "$f")"
        dpkg-deb -I "$f"
        dpkg-deb -c "$f" | tee "$WORK/contents"
        check_eq "$pkg/$arch Package" "$(dpkg-deb -f "$f" Package)" "$pkg"
        check_eq "$pkg/$arch Version" "$(dpkg-deb -f "$f" Version)" "$V1"
        check_eq "$pkg/$arch Architecture" "$(dpkg-deb -f "$f" Architecture)" "$arch"
        if [[ $pkg == pos-agent ]]; then
            conf=/etc/edgepos/agent.yaml unit=edgepos-agent.service
        else
            conf=/etc/edgepos/hq.yaml unit=hq-ingest.service
        fi
        want=("-rwxr-xr-x root/root ./usr/bin/$pkg"
            "-rw-r----- root/root .$conf"
            "-rw-r--r-- root/root ./usr/lib/systemd/system/$unit"
            "-rw-r--r-- root/root ./usr/share/doc/$pkg/copyright")
        [[ $pkg == pos-agent ]] && want+=("-rw-r--r-- root/root ./usr/lib/udev/rules.d/99-edgepos.rules")
        [[ $pkg == hq-ingest ]] && want+=("-rw-r--r-- root/root ./usr/share/doc/$pkg/examples/hq-postgres.yaml")
        for w in "${want[@]}"; do
            read -r wmode wown wpath <<<"$w"
            if awk -v m="$wmode" -v o="$wown" -v p="$wpath" '$1 == m && $2 == o && $6 == p { found = 1 } END { exit !found }' "$WORK/contents"; then
                ok "$pkg/$arch has $wpath ($wmode $wown)"
            else
                fail "$pkg/$arch: no $wpath with $wmode $wown"
            fi
        done
        ctrl=$WORK/ctrl-$pkg-$arch
        dpkg-deb -e "$f" "$ctrl"
        check_eq "$pkg/$arch conffiles" "$(cat "$ctrl/conffiles")" "$conf"
        for s in postinst prerm postrm; do
            check "$pkg/$arch $s is POSIX sh (sh -n)" sh -n "$ctrl/$s"
            check "$pkg/$arch $s starts with #!/bin/sh and set -e" \
                sh -c 'head -1 "$1" | grep -qx "#!/bin/sh" && grep -qx "set -e" "$1"' _ "$ctrl/$s"
            check "$pkg/$arch $s has the common functions in place of #COMMON#" \
                sh -c '! grep -q "^#COMMON#" "$1" && grep -q "^ensure_user()" "$1"' _ "$ctrl/$s"
        done
        check "$pkg/$arch postinst creates the system user (adduser --system / useradd --system)" \
            sh -c 'grep -q "adduser --system --group" "$1" && grep -q "useradd --system" "$1" && grep -q "^    ensure_user" "$1"' _ "$ctrl/postinst"
        if command -v shellcheck >/dev/null; then
            # SC2317/SC2120: every script carries all of common.sh's functions.
            check "$pkg/$arch maintainer scripts pass shellcheck -s sh" \
                shellcheck -s sh -S warning -e SC2317,SC2120 "$ctrl/postinst" "$ctrl/prerm" "$ctrl/postrm"
        fi
        bin_info=$(dpkg-deb --fsys-tarfile "$f" | tar -xO "./usr/bin/$pkg" | file -b - 2>/dev/null || true)
        case $arch in amd64) m="x86-64" ;; arm64) m="ARM aarch64" ;; esac
        if [[ $bin_info == *"$m"*statically\ linked* ]]; then ok "$pkg/$arch binary is a static $m ELF"; else fail "$pkg/$arch binary: $bin_info"; fi
    done
done

# --- install the agent -----------------------------------------------------
step "dpkg -i pos-agent (amd64), no systemd running"
dpkg -i "$(deb pos-agent amd64)" || die "dpkg -i pos-agent failed"
check_eq "pos-agent installed" "$(status_of pos-agent)" installed
check_eq "user edgepos: home and shell" "$(getent passwd edgepos | cut -d: -f6,7)" "/var/lib/edgepos:/usr/sbin/nologin"
uid=$(id -u edgepos)
if ((uid < 1000)); then ok "edgepos is a system user (uid $uid)"; else fail "edgepos uid $uid is not a system uid"; fi
groups=" $(id -nG edgepos) "
for g in dialout lp; do
    if [[ $groups == *" $g "* ]]; then ok "edgepos is in group $g"; else fail "edgepos not in group $g:$groups"; fi
done
check_eq "/var/lib/edgepos owner and mode" "$(mode_of /var/lib/edgepos)" "edgepos:edgepos 750"
check_eq "/etc/edgepos/agent.yaml owner and mode" "$(mode_of /etc/edgepos/agent.yaml)" "root:edgepos 640"
check "unit enabled for boot (link written without systemd)" test -L /etc/systemd/system/multi-user.target.wants/edgepos-agent.service
out=$(/usr/bin/pos-agent version 2>&1) || true
if [[ $out == *"$V1"* ]]; then ok "pos-agent version: $out"; else fail "pos-agent version: \"$out\", want $V1"; fi
if out=$(/usr/bin/pos-agent check-config 2>&1); then
    ok "pos-agent check-config passes on the installed /etc/edgepos/agent.yaml"
else
    fail "pos-agent check-config on the installed config: $out"
fi
if out=$(runuser -u edgepos -- /usr/bin/pos-agent check-config 2>&1); then
    ok "check-config passes as the service user edgepos (it can read its config)"
else
    fail "check-config as edgepos: $out"
fi
if out=$(runuser -u edgepos -- env EDGEPOS_SYNC_PASSWORD=from-env-file /usr/bin/pos-agent check-config 2>&1) &&
    [[ $out == *"password set"* ]]; then
    ok "a password from the unit's EnvironmentFile (EDGEPOS_SYNC_PASSWORD) works with the 0640 config"
else
    fail "EDGEPOS_SYNC_PASSWORD with the installed config: $out"
fi
install -o edgepos -g edgepos -m 0600 /dev/null /etc/edgepos/mqtt-password
echo pw >/etc/edgepos/mqtt-password
if out=$(runuser -u edgepos -- /usr/bin/pos-agent --set sync.password_file=/etc/edgepos/mqtt-password check-config 2>&1) &&
    [[ $out == *"password from /etc/edgepos/mqtt-password"* ]]; then
    ok "sync.password_file (edgepos 0600) works with the 0640 config"
else
    fail "sync.password_file with the installed config: $out"
fi
rm -f /etc/edgepos/mqtt-password
check "postinst is idempotent (configure again)" /var/lib/dpkg/info/pos-agent.postinst configure "$V1"
check_eq "after a second configure: agent.yaml" "$(mode_of /etc/edgepos/agent.yaml)" "root:edgepos 640"

if command -v systemd-analyze >/dev/null; then
    out=$(systemd-analyze verify /usr/lib/systemd/system/edgepos-agent.service 2>&1) || true
    if [[ -z $out ]]; then ok "systemd-analyze verify edgepos-agent.service: clean"; else fail "systemd-analyze verify edgepos-agent.service: $out"; fi
else
    echo "  skip systemd-analyze not installed"
fi
if command -v udevadm >/dev/null && [[ -d /sys/class/tty ]]; then
    dev=$(find /sys/class/tty/ -mindepth 1 -maxdepth 1 | head -1)
    out=$(timeout 30 udevadm test --action=add "$dev" 2>&1 || true)
    if [[ $out != *"99-edgepos.rules"* ]]; then
        fail "udevadm test did not read 99-edgepos.rules"
    elif grep -q '99-edgepos.rules:[0-9]' <<<"$out"; then
        fail "udev rules: $(grep '99-edgepos.rules:[0-9]' <<<"$out")"
    else
        ok "udevadm test parses 99-edgepos.rules without errors"
    fi
else
    echo "  skip udevadm not available"
fi

# --- bad configs -----------------------------------------------------------
step "check-config refuses bad configs"
bad=$WORK/bad
mkdir -p "$bad"
cp /etc/edgepos/agent.yaml "$bad/ww.yaml"
chmod 0666 "$bad/ww.yaml"
expect_fail "world-writable config refused" "writable by every user" /usr/bin/pos-agent --config "$bad/ww.yaml" check-config
cp /etc/edgepos/agent.yaml "$bad/unknown.yaml"
chmod 0640 "$bad/unknown.yaml"
printf 'stor_id: S002\n' >>"$bad/unknown.yaml"
expect_fail "unknown key refused" "unknown key" /usr/bin/pos-agent --config "$bad/unknown.yaml" check-config
sed 's/^  password: ""/  password: "s3cret-pw"/' /etc/edgepos/agent.yaml >"$bad/pw.yaml"
grep -q 's3cret-pw' "$bad/pw.yaml" || fail "could not put a password into the test config"
chmod 0640 "$bad/pw.yaml"
expect_fail "password in a group-readable config refused" "group or others have access" /usr/bin/pos-agent --config "$bad/pw.yaml" check-config
chmod 0600 "$bad/pw.yaml"
check "the same config at 0600 passes" /usr/bin/pos-agent --config "$bad/pw.yaml" check-config

# --- upgrade ---------------------------------------------------------------
step "upgrade $V1 -> $V2 with a changed conffile and data (--force-confold)"
sed -i 's/^terminal_id: .*/terminal_id: T7-ci/' /etc/edgepos/agent.yaml
grep -qx 'terminal_id: T7-ci' /etc/edgepos/agent.yaml || fail "could not edit agent.yaml for the upgrade test"
runuser -u edgepos -- sh -c 'echo marker >/var/lib/edgepos/ci-marker'
# A real database, made the way the README says (as the service user).
if out=$(echo 4321 | runuser -u edgepos -- /usr/bin/pos-agent users add --id ci01 --name "CI Manager" --role manager --pin-stdin 2>&1); then
    ok "users add as edgepos creates the database: $out"
else
    fail "users add as edgepos: $out"
fi
check_eq "database owner" "$(stat -c %U /var/lib/edgepos/pos.db 2>/dev/null)" edgepos
dpkg -i --force-confold "$AGENT_V2" || die "dpkg -i (upgrade) failed"
check_eq "installed version after upgrade" "$(dpkg-query -W -f='${Version}' pos-agent)" "$V2"
out=$(/usr/bin/pos-agent version 2>&1) || true
if [[ $out == *"$V2"* ]]; then ok "new binary: $out"; else fail "pos-agent version after upgrade: $out"; fi
check "admin's change to agent.yaml kept" grep -qx 'terminal_id: T7-ci' /etc/edgepos/agent.yaml
check "no agent.yaml.dpkg-* left to confuse the admin" sh -c '! ls /etc/edgepos/agent.yaml.dpkg-* 2>/dev/null'
check "marker in /var/lib/edgepos kept" test -f /var/lib/edgepos/ci-marker
if out=$(runuser -u edgepos -- /usr/bin/pos-agent backup /var/lib/edgepos/ci-backup.db 2>&1) && [[ -s /var/lib/edgepos/ci-backup.db ]]; then
    ok "the new version opens the kept database and backs it up: $out"
else
    fail "backup after upgrade: $out"
fi
check_eq "agent.yaml owner and mode after upgrade" "$(mode_of /etc/edgepos/agent.yaml)" "root:edgepos 640"
if out=$(runuser -u edgepos -- /usr/bin/pos-agent check-config 2>&1) && [[ $out == *"terminal T7-ci"* ]]; then
    ok "check-config after upgrade reads the kept config"
else
    fail "check-config after upgrade: $out"
fi

# --- remove ----------------------------------------------------------------
step "dpkg -r pos-agent: data and config stay"
dpkg -r pos-agent || die "dpkg -r pos-agent failed"
check_eq "status after remove" "$(status_of pos-agent)" config-files
check "binary gone" test ! -e /usr/bin/pos-agent
check "unit gone" test ! -e /usr/lib/systemd/system/edgepos-agent.service
check "udev rules gone" test ! -e /usr/lib/udev/rules.d/99-edgepos.rules
check "/var/lib/edgepos kept (marker)" test -f /var/lib/edgepos/ci-marker
check "/etc/edgepos/agent.yaml kept with the admin's change" grep -qx 'terminal_id: T7-ci' /etc/edgepos/agent.yaml

# --- purge -----------------------------------------------------------------
step "dpkg -P pos-agent: data and config go"
dpkg -P pos-agent || die "dpkg -P pos-agent failed"
s=$(status_of pos-agent)
if [[ -z $s || $s == not-installed ]]; then ok "pos-agent not installed"; else fail "status after purge: $s"; fi
check "/var/lib/edgepos gone" test ! -e /var/lib/edgepos
check "/etc/edgepos gone" test ! -e /etc/edgepos
check "enable link gone" test ! -L /etc/systemd/system/multi-user.target.wants/edgepos-agent.service
check "user edgepos kept (Debian practice, see postrm)" getent passwd edgepos

# --- hq-ingest -------------------------------------------------------------
step "hq-ingest (amd64): install, version, check-config, remove, purge"
dpkg -i "$(deb hq-ingest amd64)" || die "dpkg -i hq-ingest failed"
out=$(/usr/bin/hq-ingest version 2>&1) || true
if [[ $out == *"$V1"* ]]; then ok "hq-ingest version: $out"; else fail "hq-ingest version: \"$out\", want $V1"; fi
check_eq "/etc/edgepos/hq.yaml owner and mode" "$(mode_of /etc/edgepos/hq.yaml)" "root:edgepos 640"
check_eq "/etc/edgepos/hq-tokens (written by postinst)" "$(mode_of /etc/edgepos/hq-tokens)" "root:edgepos 640"
check_eq "/var/lib/edgepos-hq owner and mode" "$(mode_of /var/lib/edgepos-hq)" "edgepos:edgepos 750"
if out=$(runuser -u edgepos -- /usr/bin/hq-ingest -config /etc/edgepos/hq.yaml check-config 2>&1); then
    ok "hq-ingest check-config passes as edgepos on the installed config: $out"
else
    fail "hq-ingest check-config: $out"
fi
tok=$(grep -v '^#' /etc/edgepos/hq-tokens)
check "postinst is idempotent and keeps the API token" sh -c '/var/lib/dpkg/info/hq-ingest.postinst configure "$1" >/dev/null && [ "$(grep -v "^#" /etc/edgepos/hq-tokens)" = "$2" ]' _ "$V1" "$tok"
if command -v systemd-analyze >/dev/null; then
    out=$(systemd-analyze verify /usr/lib/systemd/system/hq-ingest.service 2>&1) || true
    if [[ -z $out ]]; then ok "systemd-analyze verify hq-ingest.service: clean"; else fail "systemd-analyze verify hq-ingest.service: $out"; fi
fi
# Both packages on one machine share /etc/edgepos: purging one keeps the other's.
dpkg -i "$(deb pos-agent amd64)" >/dev/null || die "dpkg -i pos-agent (with hq-ingest) failed"
dpkg -P pos-agent >/dev/null || die "dpkg -P pos-agent (with hq-ingest) failed"
check "purging pos-agent keeps hq-ingest's /etc/edgepos/hq.yaml" test -f /etc/edgepos/hq.yaml
dpkg -r hq-ingest || die "dpkg -r hq-ingest failed"
check_eq "hq-ingest status after remove" "$(status_of hq-ingest)" config-files
check "hq-ingest binary gone" test ! -e /usr/bin/hq-ingest
check "hq.yaml and /var/lib/edgepos-hq kept after remove" test -f /etc/edgepos/hq.yaml -a -d /var/lib/edgepos-hq
dpkg -P hq-ingest || die "dpkg -P hq-ingest failed"
check "/var/lib/edgepos-hq gone after purge" test ! -e /var/lib/edgepos-hq
check "/etc/edgepos gone after purge" test ! -e /etc/edgepos

printf '\nci-check: %d failure(s), %ss\n' "$failures" "$(($(date +%s) - start))"
((failures == 0))
