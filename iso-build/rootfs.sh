#!/usr/bin/env bash
# The live system's base root filesystem, from Debian's archive only: debootstrap, then one chroot
# install of the kernel, live-boot and the few tools the client and the operator need.
# build.sh caches the result keyed on this file's hash and the mirror, so anything that changes the
# base system belongs here and nothing else does.
#
# usage: rootfs.sh TARGET_DIR MIRROR SECURITY_MIRROR
set -euo pipefail

root=$1
mirror=$2
security=$3
suite=bookworm

# Kept small on purpose: every package here is in the ISO users download.
packages=(
  linux-image-amd64 live-boot systemd-sysv udev zstd
  iproute2 systemd-resolved   # DHCP and static addresses through systemd-networkd; DNS
  ca-certificates             # for tools other than Node, which carries its own CA store
  kbd console-setup           # the operator's console keymap (KEYMAP=)
  eject                       # eject the ISO before rebooting into the restored system
  less nano-tiny              # for the operator's shell on the second console
)

mounted=()
cleanup() {
  # Unmount in reverse order even when the install failed, or the next build finds a busy tree.
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT

debootstrap --variant=minbase "$suite" "$root" "$mirror"

# debootstrap's list has only the release; the kernel and its fixes come from -updates and -security.
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
EOF

# Documentation, manuals and translations are not read on a rescue console; licences stay.
cat >"$root/etc/dpkg/dpkg.cfg.d/failback-small" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF

# Written before the kernel goes in, so its initramfs is built once, already with these settings:
# zstd is fast to unpack under emulation and on old servers alike; MODULES=most keeps the storage
# and network drivers any server may need.
mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/etc/modprobe.d"
printf 'COMPRESS=zstd\nMODULES=most\n' >"$root/etc/initramfs-tools/conf.d/failback"
# The PC speaker beeps on every console bell otherwise.
printf 'blacklist pcspkr\n' >"$root/etc/modprobe.d/failback.conf"

# The console keymap question would stop a non-interactive install.
cat >"$root/tmp/debconf" <<'EOF'
keyboard-configuration keyboard-configuration/layoutcode string us
keyboard-configuration keyboard-configuration/xkb-keymap select us
console-setup console-setup/charmap47 select UTF-8
EOF

for fs in proc sys dev dev/pts; do
  case $fs in
    proc) mount -t proc proc "$root/proc" ;;
    sys) mount -t sysfs sysfs "$root/sys" ;;
    dev) mount --bind /dev "$root/dev" ;;
    dev/pts) mount -t devpts devpts "$root/dev/pts" ;;
  esac
  mounted+=("$root/$fs")
done

in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
in_root debconf-set-selections /tmp/debconf
in_root apt-get update -qq
in_root apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
in_root apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root/tmp/debconf"

# Drivers a server being failed back never needs (sound, cameras and TV cards, Wi-Fi, Bluetooth,
# CAN, ISDN, sensors), and GPU drivers that cannot start without the non-free firmware the ISO does
# not carry: a third of the kernel's modules, none of them storage or wired network.
for kernel_dir in "$root"/usr/lib/modules/*/kernel; do
  (cd "$kernel_dir" && rm -rf sound drivers/media drivers/net/wireless net/wireless net/mac80211 \
    drivers/bluetooth net/bluetooth drivers/net/can net/can drivers/isdn drivers/iio drivers/staging \
    drivers/gpu/drm/amd drivers/gpu/drm/radeon drivers/gpu/drm/nouveau)
  in_root depmod "$(basename "$(dirname "$kernel_dir")")"
done
# debootstrap's own packages went in before the dpkg filter above.
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/*
find "$root/usr/share/doc" -type f ! -name copyright -delete

echo failback >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tfailback\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
# The hardware clock is read as UTC, the way servers keep it; systemd creates the machine id at boot.
printf '0.0 0 0.0\n0\nUTC\n' >"$root/etc/adjtime"
ln -sf /usr/share/zoneinfo/Etc/UTC "$root/etc/localtime"
echo Etc/UTC >"$root/etc/timezone"
: >"$root/etc/machine-id"
