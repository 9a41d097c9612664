# Shared by the maintainer scripts of pos-agent and hq-ingest. build.sh puts
# this file in place of the line "#COMMON#" of each script, so every script
# stays one self-contained POSIX sh file inside the .deb. Keep it free of
# side effects: functions only.

EDGEPOS_USER=edgepos
EDGEPOS_HOME=/var/lib/edgepos

# ensure_user GROUP...: create the system user edgepos (no login shell, home
# /var/lib/edgepos, own group edgepos) unless it exists, and add it to the
# supplementary groups given that exist. Idempotent.
ensure_user() {
    if ! getent passwd "$EDGEPOS_USER" >/dev/null; then
        if command -v adduser >/dev/null 2>&1; then
            adduser --system --group --quiet --home "$EDGEPOS_HOME" \
                --no-create-home --shell /usr/sbin/nologin "$EDGEPOS_USER"
        else
            useradd --system --user-group --home-dir "$EDGEPOS_HOME" \
                --no-create-home --shell /usr/sbin/nologin "$EDGEPOS_USER"
        fi
    fi
    for g in "$@"; do
        getent group "$g" >/dev/null || continue
        if ! id -nG "$EDGEPOS_USER" | tr ' ' '\n' | grep -qx "$g"; then
            usermod -a -G "$g" "$EDGEPOS_USER"
        fi
    done
}

# ensure_datadir DIR: DIR exists, owned by the service user, mode 0750.
# Never touches what is inside.
ensure_datadir() {
    mkdir -p "$1"
    chown "$EDGEPOS_USER:$EDGEPOS_USER" "$1"
    chmod 0750 "$1"
}

# own_conffile FILE: let the service read a config file dpkg has just
# unpacked (dpkg unpacks it root:root). Only a file still root:root is
# changed, so an administrator's own owner and mode (for instance
# edgepos 0600 for a file that holds a password) survive upgrades.
own_conffile() {
    [ -f "$1" ] || return 0
    if [ "$(stat -c %U:%G "$1")" = root:root ]; then
        chgrp "$EDGEPOS_USER" "$1"
        chmod 0640 "$1"
    fi
}

# conffile_is_pristine PKG FILE: true if FILE still has the content the
# package shipped (dpkg's recorded md5).
conffile_is_pristine() {
    shipped=$(dpkg-query -W -f='${Conffiles}\n' "$1" 2>/dev/null |
        awk -v f="$2" '$1 == f { print $2 }')
    [ -n "$shipped" ] && [ -f "$2" ] &&
        [ "$(md5sum <"$2" | cut -d' ' -f1)" = "$shipped" ]
}

# systemd_configure UNIT OLD_VERSION START_ON_INSTALL: record the unit as
# enabled (first install) or refresh the links the administrator left
# (upgrade), like every Debian service. deb-systemd-helper works without a
# running systemd (it only writes links), so an image built in a chroot or
# container boots with the service enabled. Starting and restarting happen
# only when systemd is running.
systemd_configure() {
    unit=$1 old=$2 start=$3
    if command -v deb-systemd-helper >/dev/null 2>&1; then
        deb-systemd-helper unmask "$unit" >/dev/null || true
        # was-enabled is true for a unit never seen before: a first
        # install enables it; an administrator's "disable" is kept.
        if deb-systemd-helper --quiet was-enabled "$unit"; then
            deb-systemd-helper enable "$unit" >/dev/null || true
        else
            deb-systemd-helper update-state "$unit" >/dev/null || true
        fi
    fi
    [ -d /run/systemd/system ] || return 0
    systemctl --system daemon-reload >/dev/null || true
    if [ -n "$old" ]; then
        # Upgrade: restart only if it was running.
        if ! invoke try-restart "$unit"; then
            echo "WARNING: $unit did not restart; see: journalctl -u $unit" >&2
        fi
    elif [ "$start" = yes ]; then
        # Not if the administrator disabled it before installing.
        systemctl --quiet is-enabled "$unit" 2>/dev/null || return 0
        if ! invoke start "$unit"; then
            echo "WARNING: $unit did not start; see: journalctl -u $unit" >&2
        fi
    fi
}

# invoke ACTION UNIT: deb-systemd-invoke honours policy-rc.d (no service
# starts while an image is being built); plain systemctl otherwise.
invoke() {
    if command -v deb-systemd-invoke >/dev/null 2>&1; then
        deb-systemd-invoke "$1" "$2"
    else
        systemctl "$1" "$2"
    fi
}

# systemd_stop UNIT: stop the unit before its files go (remove only).
systemd_stop() {
    [ -d /run/systemd/system ] || return 0
    invoke stop "$1" || true
}

# systemd_purge UNIT: forget the unit's enable links and state.
systemd_purge() {
    if command -v deb-systemd-helper >/dev/null 2>&1; then
        deb-systemd-helper purge "$1" >/dev/null || true
        deb-systemd-helper unmask "$1" >/dev/null || true
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
    fi
}

# remove_etc OTHER_PKG FILE...: on purge. /etc/edgepos is shared by both
# edgepos packages: it goes as a whole only when the other package has left
# nothing behind (not installed, no conffiles kept); otherwise just FILEs.
remove_etc() {
    other=$1
    shift
    status=$(dpkg-query -W -f='${db:Status-Status}' "$other" 2>/dev/null || true)
    if [ -z "$status" ] || [ "$status" = not-installed ]; then
        rm -rf /etc/edgepos
    else
        for f in "$@"; do
            rm -f "$f" "$f".dpkg-old "$f".dpkg-new "$f".dpkg-dist "$f".dpkg-tmp
        done
    fi
}
