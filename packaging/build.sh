#!/usr/bin/env bash
# Build the edgepos .deb packages: pos-agent (store terminals) and hq-ingest
# (HQ), for linux/amd64 and linux/arm64, with Debian's dpkg-deb. Pure Go
# (CGO_ENABLED=0), so every architecture cross-builds on one machine.
#
#   packaging/build.sh [-a ARCH,...] [-p PACKAGE,...] [-o DIR] [-v VERSION] [-r REV]
#   packaging/build.sh [-r REV] --print-version
#
#   -a  Debian architectures: amd64, arm64 (default both), armhf (ARMv7)
#   -p  packages: pos-agent, hq-ingest (default both)
#   -o  output directory (default dist/, gitignored)
#   -v  package version (default: $VERSION, else from git, see below)
#   -r  build a git commit (git archive REV into a temp dir), not the
#       working tree: what a release should do, and what keeps a build
#       going while the working tree has someone's half-done edits
#
# Environment: VERSION, GO (go command), DEB_COMPRESS (dpkg-deb -Z: xz, the
# default, or gzip, faster for throwaway CI builds), DEB_MAINTAINER.
#
# It prints the path of every .deb it wrote. A command that does not
# compile is reported by name; the packages that did build are still
# written, and the script exits 1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PKGDIR=$ROOT/packaging

die() { echo "build.sh: $*" >&2; exit 1; }

# debian_version prints the package version: $VERSION if set, else from git.
#   tag v1.2.3               -> 1.2.3
#   tag v1.2.3-rc1           -> 1.2.3~rc1        (sorts before 1.2.3)
#   5 commits after v1.2.3   -> 1.2.3+5.g<sha>   (after 1.2.3, before 1.2.4)
#   no tag                   -> 0.1.0~dev<commits>+g<sha>
# The commit count keeps untagged builds of one branch in upgrade order (a
# sha alone sorts at random). Debian upstream versions may not contain "-"
# in a native package, so git's dashes are mapped.
debian_version() {
    local v desc
    if [[ -n ${VERSION:-} ]]; then
        v=$VERSION
    elif desc=$(git -C "$ROOT" describe --tags --match 'v[0-9]*' "$REV" 2>/dev/null); then
        desc=${desc#v}
        if [[ $desc =~ ^(.*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
            v="${BASH_REMATCH[1]//-/\~}+${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}"
        else
            v=${desc//-/\~}
        fi
    elif desc=$(git -C "$ROOT" rev-parse --short "$REV" 2>/dev/null); then
        v="0.1.0~dev$(git -C "$ROOT" rev-list --count "$REV")+g$desc"
    else
        die "no git repository: set VERSION (e.g. VERSION=1.2.3 $0)"
    fi
    [[ $v =~ ^[0-9][A-Za-z0-9.+~]*$ ]] ||
        die "version \"$v\" is not a Debian native version (digits first, then letters, digits, . + ~)"
    if ! dpkg --validate-version "$v" >/dev/null 2>&1; then
        die "version \"$v\" rejected by dpkg --validate-version"
    fi
    printf '%s\n' "$v"
}

# goarch maps a Debian architecture to GOARCH (and GOARM).
goenv() {
    case $1 in
    amd64) echo "GOARCH=amd64" ;;
    arm64) echo "GOARCH=arm64" ;;
    armhf) echo "GOARCH=arm GOARM=7" ;;
    *) die "unknown architecture \"$1\" (amd64, arm64, armhf)" ;;
    esac
}

ARCHES=amd64,arm64
PACKAGES=pos-agent,hq-ingest
OUT=$ROOT/dist
REV=HEAD
FROMGIT=
while (($#)); do
    case $1 in
    -a) ARCHES=${2:?-a needs a value}; shift 2 ;;
    -p) PACKAGES=${2:?-p needs a value}; shift 2 ;;
    -o) OUT=${2:?-o needs a value}; shift 2 ;;
    -v) VERSION=${2:?-v needs a value}; shift 2 ;;
    -r) REV=${2:?-r needs a value}; FROMGIT=1; shift 2 ;;
    --print-version) debian_version; exit 0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument \"$1\" (see $0 --help)" ;;
    esac
done

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[[ -x $GO ]] || die "no go command (set GO=/path/to/go)"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (apt-get install dpkg)"
V=$(debian_version)
COMPRESS=${DEB_COMPRESS:-xz}
MAINTAINER=${DEB_MAINTAINER:-edgepos maintainers <edgepos@localhost>}
# Reproducible: file times in the package are the commit's time.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct "$REV" 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

IFS=, read -r -a arches <<<"$ARCHES"
IFS=, read -r -a pkgs <<<"$PACKAGES"
for p in "${pkgs[@]}"; do
    [[ $p == pos-agent || $p == hq-ingest ]] || die "unknown package \"$p\" (pos-agent, hq-ingest)"
done
for a in "${arches[@]}"; do goenv "$a" >/dev/null; done

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edgepos-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# SRC is the tree the Go code and configs come from; packaging/ (scripts,
# units, rules) is always this checkout's.
SRC=$ROOT
if [[ -n $FROMGIT ]]; then
    SRC=$WORK/src
    mkdir -p "$SRC"
    git -C "$ROOT" archive --format=tar "$REV" | tar -x -C "$SRC" ||
        die "git archive $REV failed"
fi

# Maintainer scripts: common.sh replaces the "#COMMON#" line.
render_script() { # src dst
    awk -v common="$PKGDIR/debian/common.sh" '
        $0 == "#COMMON#" { while ((getline line < common) > 0) print line; next }
        { print }' "$1" >"$2"
    chmod 0755 "$2"
}

# stage PKG ARCH BINARY: the package's file tree under $WORK/stage.
stage() {
    local pkg=$1 arch=$2 bin=$3 root=$WORK/stage/$1_$2
    rm -rf "$root"
    install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/etc/edgepos" \
        "$root/usr/lib/systemd/system" "$root/usr/share/doc/$pkg"
    install -m 0755 "$bin" "$root/usr/bin/$pkg"
    case $pkg in
    pos-agent)
        install -m 0640 "$SRC/configs/agent.yaml" "$root/etc/edgepos/agent.yaml"
        install -m 0644 "$PKGDIR/systemd/edgepos-agent.service" "$root/usr/lib/systemd/system/"
        install -d -m 0755 "$root/usr/lib/udev/rules.d"
        install -m 0644 "$PKGDIR/udev/99-edgepos.rules" "$root/usr/lib/udev/rules.d/"
        ;;
    hq-ingest)
        install -m 0640 "$SRC/configs/hq.yaml" "$root/etc/edgepos/hq.yaml"
        install -d -m 0755 "$root/usr/share/doc/$pkg/examples"
        install -m 0644 "$SRC/configs/hq-postgres.yaml" "$root/usr/share/doc/$pkg/examples/"
        install -m 0644 "$PKGDIR/systemd/hq-ingest.service" "$root/usr/lib/systemd/system/"
        ;;
    esac
    install -m 0644 "$PKGDIR/README.md" "$root/usr/share/doc/$pkg/README.md"
    cat >"$root/usr/share/doc/$pkg/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: edgepos
Comment: /usr/bin/$pkg is a static Go binary. It includes Go modules under
 their own licenses (BSD-3-Clause, MIT, Apache-2.0, EPL-2.0/EDL-1.0); list
 them with: go version -m /usr/bin/$pkg

Files: *
Copyright: the edgepos authors
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
    install -m 0644 "$PKGDIR/debian/$pkg/conffiles" "$root/DEBIAN/conffiles"
    for s in postinst prerm postrm; do
        render_script "$PKGDIR/debian/$pkg/$s" "$root/DEBIAN/$s"
    done

    local size desc recommends
    size=$(du -sk --apparent-size --exclude=DEBIAN "$root" | cut -f1)
    if [[ $pkg == pos-agent ]]; then
        recommends="systemd, udev"
        desc="edgepos store agent for POS terminals
 The edgepos agent runs on every store terminal: it drives barcode
 scanners, ESC/POS receipt printers and weighing shelves, records sales in
 a local SQLite database, keeps selling while the network is down, and
 syncs to HQ over MQTT. Config: /etc/edgepos/agent.yaml. Service:
 edgepos-agent. udev rules name devices /dev/edgepos/scanner0, printer0."
    else
        recommends="systemd"
        desc="edgepos HQ ingest service
 hq-ingest stores every store terminal's uploads exactly once in SQLite or
 PostgreSQL, publishes catalog, prices and coupons to the stores over MQTT,
 and serves the operator API and dashboard. Config: /etc/edgepos/hq.yaml.
 Service: hq-ingest."
    fi
    cat >"$root/DEBIAN/control" <<EOF
Package: $pkg
Version: $V
Architecture: $arch
Maintainer: $MAINTAINER
Installed-Size: $size
Depends: adduser | passwd
Recommends: $recommends
Section: misc
Priority: optional
Description: $desc
EOF
    find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

declare -A cmdpkg=([pos-agent]=./cmd/pos-agent [hq-ingest]=./cmd/hq-ingest)
failed=()
built=()
for arch in "${arches[@]}"; do
    env_=$(goenv "$arch")
    for pkg in "${pkgs[@]}"; do
        bin=$WORK/bin/$arch/$pkg
        mkdir -p "$(dirname "$bin")"
        echo "build.sh: go build ${cmdpkg[$pkg]} for linux/$arch, version $V" >&2
        # shellcheck disable=SC2086 # env_ is "GOARCH=... [GOARM=...]"
        if ! (cd "$SRC" && env CGO_ENABLED=0 GOOS=linux $env_ "$GO" build -trimpath -buildvcs=false \
            -ldflags "-s -w -X main.version=$V" -o "$bin" "${cmdpkg[$pkg]}"); then
            echo "build.sh: FAILED: ${cmdpkg[$pkg]} does not build for linux/$arch; no $pkg package for $arch" >&2
            failed+=("$pkg/$arch")
            continue
        fi
        stage "$pkg" "$arch" "$bin"
        deb=$OUT/${pkg}_${V}_${arch}.deb
        dpkg-deb --root-owner-group -Z"$COMPRESS" --build "$WORK/stage/${pkg}_$arch" "$deb" >/dev/null
        built+=("$deb")
        echo "$deb"
    done
done

if ((${#failed[@]})); then
    echo "build.sh: FAILED to build: ${failed[*]} (built: ${#built[@]} package(s))" >&2
    exit 1
fi
