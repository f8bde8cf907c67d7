#!/usr/bin/env bash
# Check the runtime stage of deploy/Dockerfile without a container engine: a Debian 12
# (bookworm) root made by debootstrap, the runtime packages the Dockerfile installs (read from
# it, so the two cannot drift) installed with apt inside it, the gengdi binary copied in, and
# then, chrooted: every shared library gengdi needs resolves, `gengdi --version`, and
# `gengdi analyze` on the shipped demo scene as the image's user.
#
#   deploy/check-runtime.sh [GENGDI_BINARY] [ROOT_DIR]
#
# GENGDI_BINARY defaults to target/release/gengdi, else target/debug/gengdi; ROOT_DIR to
# target/runtime-root (kept between runs; delete it to start over). Needs root (debootstrap,
# chroot) and Debian's package mirror. Not part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-}"
if [ -z "$bin" ]; then
    for b in target/release/gengdi target/debug/gengdi; do
        [ -x "$b" ] && bin="$b" && break
    done
fi
[ -x "$bin" ] || { echo "no gengdi binary: build one (cargo build) or name it" >&2; exit 2; }
root="${2:-target/runtime-root}"
[ "$(id -u)" -eq 0 ] || { echo "run as root (debootstrap and chroot)" >&2; exit 2; }

# The runtime stage's packages, as the Dockerfile lists them.
packages=$(awk '/^FROM debian:bookworm-slim/{rt=1} rt && /apt-get install/{on=1; next}
                rt && on { if ($0 ~ /&&/) { sub(/&&.*/, ""); print; exit } print }' deploy/Dockerfile |
           tr -d '\\' | xargs)
[ -n "$packages" ] || { echo "cannot read the runtime packages from deploy/Dockerfile" >&2; exit 1; }
echo "runtime packages (deploy/Dockerfile): $packages"

command -v debootstrap >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
if [ ! -x "$root/usr/bin/apt-get" ]; then
    rm -rf "$root"
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
fi
mount_all() {
    mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
    mountpoint -q "$root/dev" || mount --bind /dev "$root/dev"
}
umount_all() {
    umount "$root/proc" 2>/dev/null || true
    umount "$root/dev" 2>/dev/null || true
}
trap umount_all EXIT
mount_all
cp /etc/resolv.conf "$root/etc/resolv.conf"
# shellcheck disable=SC2086
chroot "$root" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends $packages >/dev/null"

# The image's user and data dir (as the Dockerfile makes them).
chroot "$root" sh -c 'getent group gengdi >/dev/null || groupadd --system --gid 10001 gengdi;
    getent passwd gengdi >/dev/null || useradd --system --uid 10001 --gid gengdi \
        --create-home --home-dir /home/gengdi --shell /usr/sbin/nologin gengdi;
    install -d -o gengdi -g gengdi -m 0750 /var/lib/gengdi'
install -D -m 0755 "$bin" "$root/usr/local/bin/gengdi"

missing=$(chroot "$root" ldd /usr/local/bin/gengdi | grep 'not found' || true)
if [ -n "$missing" ]; then
    echo "libraries missing from the runtime stage:" >&2
    echo "$missing" >&2
    exit 1
fi
echo "every shared library resolves"
chroot "$root" /usr/local/bin/gengdi --version

# The demo scene, analysed inside the root as the image's user.
demo=/var/lib/gengdi/demo
rm -rf "$root$demo"
mkdir -p "$root$demo"
cp fixtures/data/eolearn-slovenia-s2/s2l1c_2015*_13band.tif \
   fixtures/data/eolearn-slovenia-s2/lulc_raba_polygons.gpkg fixtures/slovenia-rules.toml "$root$demo/"
chroot "$root" chown -R gengdi:gengdi "$demo"
chroot "$root" su -s /bin/sh gengdi -c "cd $demo && /usr/local/bin/gengdi analyze \
    --scenes s2l1c_2015*_13band.tif --farmland lulc_raba_polygons.gpkg \
    --farmland-fields land_class=RABA_ID --config slovenia-rules.toml \
    --out changes.geojson --tile 64" 2>&1 | tail -5
test -s "$root$demo/changes.geojson" || { echo "no changes.geojson written" >&2; exit 1; }
echo "runtime stage OK: $(wc -c < "$root$demo/changes.geojson") bytes of changes.geojson"
