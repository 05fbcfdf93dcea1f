#!/bin/bash
# Starts the failback client on the live system's console, as the DRS Failback Client's start.sh
# does, and takes the same variables, from the environment or from the kernel command line:
#
#   IPADDR NETMASK GATEWAY DNS CONFIG_NETWORK=1   a static address instead of DHCP (DNS: a list)
#   AWS_REGION AWS_ACCESS_KEY AWS_SECRET_KEY AWS_SESSION_TOKEN
#   AWS_DRS_ENDPOINT    a DRS (VPC) endpoint; set but empty: the default regional endpoint
#   AWS_STS_ENDPOINT    an STS (VPC) endpoint
#   RECOVERY_INSTANCE_ID DEVICE_MAPPING DM_VALUE_FORMAT NO_PROMPT=1 PROXY=https://host:port
#   FAILBACK_ARGS       more client flags (e.g. "--once --agent-address 10.0.0.9")
#   ON_SUCCESS          reboot (default: eject the ISO and boot the restored system) | poweroff | shell
#   ON_FAILURE          shell (default) | poweroff | reboot
#   KEYMAP              console keyboard layout (us, de, fr, ...)
#   IFACE               the interface CONFIG_NETWORK configures (default: the first wired one up)
#   DHCP_WAIT           seconds to wait for a DHCP address before starting anyway (default 20)
#
# Arguments (after FAILBACK_ARGS' words) go to failback-client as they are, except --no-reboot
# (same as ON_SUCCESS=shell) and the keys, which move to the environment (--pairing-code is
# refused); after --help, -h, --version or --list-devices start.sh ends with a shell.
# A variable set in the environment wins over the same name on the kernel command line.
# Exit code: the client's (docs/cli.md), unless ON_SUCCESS / ON_FAILURE powers the machine off or
# reboots it; start.sh's own, before the client runs and whatever ON_FAILURE says: 2 for a bad
# variable, 7 when networkd cannot apply the static address, 130 when Ctrl-C or SIGTERM stops the
# wait for it (the interface back on what it had, either way).
# For its tests on another machine: FAILBACK_CMDLINE, FAILBACK_NETWORK_FILE, FAILBACK_SYS_NET,
# FAILBACK_BOOT_MEDIUM and FAILBACK_SYSRQ stand for /proc/cmdline, the networkd file,
# /sys/class/net, the boot device and sysrq.
set -uo pipefail
set -f # no pathname expansion: variables hold flags and addresses, never file patterns

say() { printf '%s\n' "$*"; }
# A bad value changes nothing, whatever ON_FAILURE says: a typo in an unattended boot's settings
# must not become a reboot loop.
fail_input() { say "start.sh: $*" >&2; exit 2; }

# Secrets given as arguments would stay in this bash's /proc/PID/cmdline, which any process can
# read, for the whole run: the keys move to start.sh's own variables in the environment and
# start.sh starts again without them. There is no variable for a pairing code: it is refused.
secret_args() {
  local rest=() name value id=0 secret=0
  while (($#)); do
    case $1 in
      --aws-access-key-id | --aws-secret-access-key | --aws-session-token | --pairing-code | \
        --aws-access-key-id=* | --aws-secret-access-key=* | --aws-session-token=* | --pairing-code=*)
        name=${1%%=*}
        if [[ $1 == *=* ]]; then
          value=${1#*=}; shift
        else
          (($# >= 2)) || fail_input "$name needs a value"
          value=$2; shift 2
        fi
        case $name in
          --aws-access-key-id) export AWS_ACCESS_KEY=$value; id=1 ;;
          --aws-secret-access-key) export AWS_SECRET_KEY=$value; secret=1 ;;
          --aws-session-token) export AWS_SESSION_TOKEN=$value ;;
          --pairing-code) fail_input "--pairing-code would stay visible in ps for the whole run; give it in the environment instead: FAILBACK_ARGS=\"--pairing-code ...\" /usr/bin/start.sh" ;;
        esac
        ;;
      *) rest+=("$1"); shift ;;
    esac
  done
  ((id == secret)) || fail_input "$( ((id)) && echo "--aws-access-key-id was given without --aws-secret-access-key" || echo "--aws-secret-access-key was given without --aws-access-key-id"): give both"
  exec "$BASH" "$0" "${rest[@]}"
}
for arg in "$@"; do
  case $arg in --aws-access-key-id* | --aws-secret-access-key* | --aws-session-token* | --pairing-code*) secret_args "$@" ;; esac
done

# The live medium: the ISO's own label, whether booted from a CD, a USB stick or copied to RAM.
boot_medium() {
  if [[ -n ${FAILBACK_BOOT_MEDIUM:-} ]]; then echo "$FAILBACK_BOOT_MEDIUM"; return; fi
  if [[ -e /dev/disk/by-label/FAILBACK_LIVECD ]]; then
    readlink -f /dev/disk/by-label/FAILBACK_LIVECD
  else
    findmnt -n -o SOURCE /run/live/medium 2>/dev/null || true
  fi
}

# Powering off or rebooting ends start.sh with the client's code; the system is going down.
after() {
  local action=$1 status=$2 medium why
  case $action in
    shell) return 0 ;;
    poweroff) say "Powering off."; systemctl poweroff ;;
    reboot)
      if ((status != 0)); then
        # After a failure the disks are not the restored system: boot the ISO again.
        say "Rebooting."
        systemctl reboot
        exit "$status"
      fi
      medium=$(boot_medium)
      [[ -n $medium && $medium != /dev/sr* ]] && say "Remove the USB stick ($medium) the live system booted from."
      # Only an Enter pressed once asked counts: one typed while the client ran (an extra one at a
      # prompt, or during the progress) waits unread in the terminal's queue and would answer at
      # once. -t 1: a terminal left in raw mode may hold half a line, never ended.
      while read -r -t 0; do read -r -t 1 || break; done
      say "Rebooting into the restored system in 10 s (press Enter for a shell instead)."
      if read -r -t 10; then return 0; fi
      sync
      if [[ $medium == /dev/sr* ]]; then
        # The drive stays locked while the live system reads from it, so the eject goes to the
        # drive as a SCSI command. From then on nothing can be read from the ISO: the reboot is
        # the kernel's own, through a shell builtin (the target disks are flushed and unmounted).
        if ! why=$(eject --no-unmount --scsi "$medium" 2>&1); then
          say "Could not eject $medium (${why:-no reason given}): remove the ISO by hand before the server boots from it again."
        fi
        echo b >"${FAILBACK_SYSRQ:-/proc/sysrq-trigger}"
      fi
      systemctl reboot
      ;;
  esac
  exit "$status"
}

finish() {
  local status=$1
  if ((status == 0)); then
    after "$on_success" "$status"
  else
    say "failback-client exited with code $status: the line above says why. /usr/bin/start.sh runs it again."
    after "$on_failure" "$status"
  fi
  exit "$status"
}

variables=(IPADDR NETMASK GATEWAY DNS CONFIG_NETWORK IFACE AWS_REGION AWS_ACCESS_KEY AWS_SECRET_KEY
  AWS_SESSION_TOKEN AWS_DRS_ENDPOINT AWS_STS_ENDPOINT RECOVERY_INSTANCE_ID DEVICE_MAPPING DM_VALUE_FORMAT
  NO_PROMPT PROXY FAILBACK_ARGS ON_SUCCESS ON_FAILURE KEYMAP DHCP_WAIT)

# Kernel parameters reach only PID 1's environment, so they are read back from /proc/cmdline,
# split the way the kernel's next_arg() (kernel/params.c) splits it: on blanks outside double
# quotes; then only a quote opening the word or the value, and the one closing it, are removed,
# so a JSON DEVICE_MAPPING keeps its inner quotes.
cmdline_words() {
  local text ch word="" quoted=0 i
  text=$(cat "${FAILBACK_CMDLINE:-/proc/cmdline}" 2>/dev/null) || return 0
  for ((i = 0; i < ${#text}; i++)); do
    ch=${text:i:1}
    if ((quoted == 0)) && [[ $ch == [[:space:]] ]]; then
      [[ -n $word ]] && kernel_word "$word"
      word=""
    else
      [[ $ch == '"' ]] && quoted=$((1 - quoted))
      word+=$ch
    fi
  done
  [[ -n $word ]] && kernel_word "$word"
  return 0
}
kernel_word() {
  local word=$1 value closed=0 opened=0
  [[ $word == '"'* ]] && word=${word#'"'} opened=1
  if [[ $word == *=* ]]; then
    value=${word#*=}
    if [[ $value == '"'* ]]; then
      value=${value#'"'}
      [[ $value == *'"' ]] && value=${value%'"'} closed=1
    fi
    word=${word%%=*}=$value
  fi
  ((opened && !closed)) && word=${word%'"'}
  printf '%s\0' "$word"
}

# The environment wins over the command line; on the command line, as for the kernel and
# systemd, the last of the same name wins.
from_env=" "
for known in "${variables[@]}"; do [[ -n ${!known+set} ]] && from_env+="$known "; done
while IFS= read -r -d '' word; do
  name=${word%%=*}
  [[ $word == *=* ]] || continue
  for known in "${variables[@]}"; do
    if [[ $name == "$known" && $from_env != *" $known "* ]]; then
      printf -v "$known" '%s' "${word#*=}"
      export "${known?}"
    fi
  done
done < <(cmdline_words)

on_success=shell
on_failure=shell
client_args=()
no_reboot=0
asks_only=0
# FAILBACK_ARGS is a list of flags, split on blanks and newlines like a command line (no quoting
# inside); its words are taken as start.sh's own arguments, before them.
read -r -d '' -a extra <<<"${FAILBACK_ARGS:-}" || true
for arg in "${extra[@]}" "$@"; do
  case $arg in
    --no-reboot) no_reboot=1 ;;
    # The client prints and exits 0 without failing back: nothing was restored to boot into.
    --help | -h | --version | --list-devices) asks_only=1; client_args+=("$arg") ;;
    *) client_args+=("$arg") ;;
  esac
done
case ${ON_FAILURE:-shell} in reboot | poweroff | shell) on_failure=${ON_FAILURE:-shell} ;; *) fail_input "ON_FAILURE=\"$ON_FAILURE\" is not one of shell, poweroff, reboot" ;; esac
case ${ON_SUCCESS:-reboot} in reboot | poweroff | shell) on_success=${ON_SUCCESS:-reboot} ;; *) fail_input "ON_SUCCESS=\"$ON_SUCCESS\" is not one of reboot, poweroff, shell" ;; esac
((no_reboot)) && on_success=shell
((asks_only)) && on_success=shell on_failure=shell
[[ ${DHCP_WAIT:-20} =~ ^[0-9]{1,4}$ ]] || fail_input "DHCP_WAIT=\"$DHCP_WAIT\" is not a number of seconds (e.g. 20)"

# A yes/no variable: anything but these is refused, so a typo never turns a switch on.
switch() {
  local value=${!1:-}
  case ${value,,} in
    1 | yes | true) printf -v "$2" 1 ;;
    "" | 0 | no | false | off) printf -v "$2" 0 ;;
    *) fail_input "$1=\"$value\" is not 1, yes, true or 0, no, false, off" ;;
  esac
}
switch CONFIG_NETWORK config_network
switch NO_PROMPT no_prompt

# ---- network -------------------------------------------------------------------------------

octet='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
ipv4_number() {
  # Prints the address as a number; fails for anything but a dotted quad of 0..255 written the
  # way systemd-networkd reads it (no leading zeros).
  local IFS=. a b c d
  [[ $1 =~ ^$octet\.$octet\.$octet\.$octet$ ]] || return 1
  read -r a b c d <<<"$1"
  echo $(((10#$a << 24) | (10#$b << 16) | (10#$c << 8) | 10#$d))
}

prefix_of() {
  # NETMASK as 255.255.255.0, /24 or 24; fails for a mask whose ones are not contiguous.
  local mask=${1#/} n bits=0
  if [[ $mask =~ ^(3[0-2]|[12]?[0-9])$ ]]; then echo $((10#$mask)); return 0; fi
  n=$(ipv4_number "$mask") || return 1
  while ((n & 0x80000000)); do bits=$((bits + 1)); n=$(((n << 1) & 0xffffffff)); done
  ((n == 0)) || return 1
  echo "$bits"
}

wired_interface() {
  # The first wired interface with a link; links come up a moment after the drivers, so wait a
  # little for one before settling for the first interface found.
  local dev first="" tries
  for tries in 1 2 3 4 5 6 7 8 9 10; do
    for dev in $(ls "$sys_net"); do
      [[ $dev == lo || ! -e $sys_net/$dev/device ]] && continue
      [[ -z $first ]] && first=$dev
      if [[ $(cat "$sys_net/$dev/carrier" 2>/dev/null) == 1 ]]; then echo "$dev"; return 0; fi
    done
    [[ -z $first ]] && return 0
    ((tries < 10)) && sleep 0.5
  done
  echo "$first"
}

static_file=${FAILBACK_NETWORK_FILE:-/run/systemd/network/10-failback-static.network}
sys_net=${FAILBACK_SYS_NET:-/sys/class/net}

# Checks the whole static address and sets prefix, iface, dns and servers; changes nothing.
check_static() {
  local gw_n ip_n mask_n server
  dns="" servers=()
  [[ -n ${IPADDR:-} ]] || fail_input "CONFIG_NETWORK=1 needs IPADDR (e.g. IPADDR=10.0.0.20)"
  [[ -n ${NETMASK:-} ]] || fail_input "CONFIG_NETWORK=1 needs NETMASK (e.g. NETMASK=255.255.255.0)"
  ip_n=$(ipv4_number "$IPADDR") || fail_input "IPADDR=\"$IPADDR\" is not an IPv4 address (e.g. 10.0.0.20)"
  prefix=$(prefix_of "$NETMASK") || fail_input "NETMASK=\"$NETMASK\" is not a network mask (e.g. 255.255.255.0 or 24)"
  ((prefix > 0 && prefix < 32)) || fail_input "NETMASK=\"$NETMASK\" leaves no room for a gateway (use 1..31 bits, e.g. 255.255.255.0)"
  mask_n=$(((0xffffffff << (32 - prefix)) & 0xffffffff))
  if ((prefix < 31)); then
    local host=$((ip_n & ~mask_n & 0xffffffff)) broadcast=$((~mask_n & 0xffffffff))
    ((host != 0)) || fail_input "IPADDR=\"$IPADDR\" is the network's own address for /$prefix; choose a host address"
    ((host != broadcast)) || fail_input "IPADDR=\"$IPADDR\" is the broadcast address for /$prefix; choose a host address"
  fi
  if [[ -n ${GATEWAY:-} ]]; then
    gw_n=$(ipv4_number "$GATEWAY") || fail_input "GATEWAY=\"$GATEWAY\" is not an IPv4 address (e.g. 10.0.0.1)"
    (((gw_n & mask_n) == (ip_n & mask_n))) || fail_input "GATEWAY=\"$GATEWAY\" is not in $IPADDR/$prefix's network; check IPADDR, NETMASK and GATEWAY"
    ((gw_n != ip_n)) || fail_input "GATEWAY=\"$GATEWAY\" is this machine's own IPADDR"
  fi
  IFS=', ' read -r -a servers <<<"${DNS:-}"
  for server in "${servers[@]}"; do
    [[ -z $server ]] && continue
    ipv4_number "$server" >/dev/null || fail_input "DNS=\"$DNS\": \"$server\" is not an IPv4 address (a list: DNS=10.0.0.2,10.0.0.3)"
    dns+="DNS=$server"$'\n'
  done
  if [[ -n ${IFACE:-} ]]; then
    [[ $IFACE =~ ^[A-Za-z0-9_.:-]{1,15}$ && -e $sys_net/$IFACE ]] || fail_input "IFACE=\"$IFACE\" is not a network interface here (ip link lists them)"
    iface=$IFACE
  else
    iface=$(wired_interface)
    [[ -n $iface ]] || fail_input "no wired network interface to configure (ip link lists them; set IFACE=)"
  fi
}

# The new setup is in place: its address on the interface and, with a GATEWAY, the default route
# through it. The address alone proves nothing: an earlier run may have set the same one, and a
# re-run may change only GATEWAY or DNS. Sets missing to what is not there.
static_in_place() {
  if ! ip -4 -o addr show dev "$iface" 2>/dev/null | awk -v want="$IPADDR/$prefix" '$3 == "inet" && $4 == want { found = 1 } END { exit !found }'; then
    missing="$IPADDR/$prefix is not on $iface"
    return 1
  fi
  if [[ -n ${GATEWAY:-} ]] && ! ip -4 route show default 2>/dev/null | awk -v gw="$GATEWAY" -v dev="$iface" '$1 == "default" && $2 == "via" && $3 == gw && $4 == "dev" && $5 == dev { found = 1 } END { exit !found }'; then
    missing="no default route via $GATEWAY on $iface"
    return 1
  fi
}

# Everything is checked before anything changes, so a typo never leaves the network half set;
# and if networkd cannot apply it after all, or Ctrl-C or SIGTERM stops the wait for it, the
# interface goes back to what it had: an earlier run's static setup (at a static-only site DHCP is
# no network at all), else DHCP.
# Until the new setup shows, $previous holds the last setup known to work, empty for none (DHCP).
# One still there on entry was left by a run killed outright (no trap runs for SIGKILL): the file
# beside it is that run's unchecked setup, never a working one.
apply_static() {
  local setup="$IPADDR/$prefix${GATEWAY:+ via $GATEWAY}${dns:+, DNS ${servers[*]}}" why="" missing="" waited=0
  local previous=$static_file.previous before="DHCP" old_iface old_setup ifaces=("$iface") traps
  mkdir -p "${static_file%/*}"
  if [[ -e $previous ]]; then
    if [[ -s $previous ]]; then
      mv -f "$previous" "$static_file" || { say "start.sh: could not put back $previous, the last setup known to work; the network is unchanged" >&2; return 1; }
    else
      rm -f "$static_file" "$previous"
    fi
  fi
  # The copy's name does not end in .network: networkd never reads it.
  if [[ -e $static_file ]]; then
    cp "$static_file" "$previous" || { say "start.sh: could not keep a copy of $static_file; the network is unchanged" >&2; return 1; }
    old_iface=$(awk -F= '$1 == "Name" { print $2; exit }' "$previous")
    old_setup=$(awk -F= '$1 == "Address" { a = $2 } $1 == "Gateway" { g = " via " $2 } END { print a g }' "$previous")
    if [[ -z $old_iface || $old_iface == "$iface" ]]; then
      before="its previous static setup, $old_setup"
    else
      # The earlier file was for another interface, which goes back to it; this one to DHCP.
      before="DHCP, and $old_iface on its previous static setup, $old_setup"
      ifaces+=("$old_iface")
    fi
  else
    : >"$previous" || { say "start.sh: could not write $previous; the network is unchanged" >&2; return 1; }
  fi
  # The wait may last 15 s, long enough to invite a Ctrl-C: left to its default, it would leave
  # networkd on the unchecked file. The caller's traps come back once the wait is over, so
  # a later Ctrl-C (the client's) never puts anything back.
  traps=$(trap -p INT TERM)
  trap 'static_cancelled' INT TERM
  {
    printf '[Match]\nName=%s\n\n[Network]\nDHCP=no\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nAddress=%s/%s\n' "$iface" "$IPADDR" "$prefix"
    [[ -n ${GATEWAY:-} ]] && printf 'Gateway=%s\n' "$GATEWAY"
    printf '%s' "$dns"
  } >"$static_file"
  say "Network: applying $setup on $iface (waiting up to 15 s)..."
  # Success is networkd taking the file and the new setup showing, never the old one lingering.
  if ! networkctl reload; then
    why="networkctl reload failed"
  elif ! networkctl reconfigure "$iface"; then
    why="networkctl reconfigure $iface failed"
  else
    until static_in_place; do
      ((++waited < 30)) || { why=$missing; break; }
      sleep 0.5
    done
  fi
  if [[ -n $why ]]; then
    if static_put_back; then
      say "start.sh: $iface did not take $setup: $why; it is back on $before (journalctl -u systemd-networkd says why)" >&2
    else
      say "start.sh: $iface did not take $setup: $why; networkctl failed again, putting it back on $before (journalctl -u systemd-networkd says why)" >&2
    fi
    trap - INT TERM
    eval "$traps"
    return 1
  fi
  # The traps first: once $previous is gone, a cancel would have nothing right to put back.
  trap - INT TERM
  eval "$traps"
  rm -f "$previous"
  say "Network: $iface $setup (static)"
}

# Run within apply_static, on its variables. Ctrl-C and SIGTERM are ignored from here on, networkctl
# inherits that: a second Ctrl-C must not stop the put-back half way.
static_put_back() {
  trap '' INT TERM
  if [[ -s $previous ]]; then mv -f "$previous" "$static_file"; else rm -f "$static_file" "$previous"; fi
  networkctl reload && networkctl reconfigure "${ifaces[@]}"
}

# 130, as the client's own cancel (docs/cli.md): nothing is rebooted, whatever ON_FAILURE says.
static_cancelled() {
  if static_put_back; then
    say "start.sh: cancelled before $iface took $setup; it is back on $before" >&2
  else
    say "start.sh: cancelled before $iface took $setup; networkctl failed, putting it back on $before (journalctl -u systemd-networkd says why)" >&2
  fi
  exit 130
}

wait_for_dhcp() {
  local line
  for _ in $(seq 1 $((2 * 10#${DHCP_WAIT:-20}))); do
    ip -4 route show default 2>/dev/null | grep -q . && break
    sleep 0.5
  done
  line=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $2 " " $4}' | head -n1)
  if [[ -n $line ]]; then
    say "Network: $line (DHCP)"
  else
    say "Network: no DHCP address yet. For a static one:"
    say "  IPADDR=10.0.0.20 NETMASK=255.255.255.0 GATEWAY=10.0.0.1 DNS=10.0.0.2 CONFIG_NETWORK=1 /usr/bin/start.sh"
  fi
}

if ((config_network)); then
  check_static
  [[ -n ${GATEWAY:-} ]] || say "start.sh: CONFIG_NETWORK=1 without GATEWAY: only $IPADDR/$prefix's own network is reachable" >&2
  [[ -n $dns ]] || say "start.sh: CONFIG_NETWORK=1 without DNS: no names resolve, the AWS endpoints' neither" >&2
else
  set_ones=()
  for known in IPADDR NETMASK GATEWAY DNS; do [[ -n ${!known:-} ]] && set_ones+=("$known"); done
  ((${#set_ones[@]})) && say "start.sh: ${set_ones[*]} set without CONFIG_NETWORK=1: ignored, the address comes from DHCP" >&2
fi

# Only now, with every value checked, does anything change.
if [[ -n ${KEYMAP:-} ]]; then
  if [[ $KEYMAP =~ ^[a-z]{2,3}(-[a-z0-9_]+)?$ ]]; then
    sed -i "s/^XKBLAYOUT=.*/XKBLAYOUT=\"${KEYMAP%%-*}\"/; s/^XKBVARIANT=.*/XKBVARIANT=\"$([[ $KEYMAP == *-* ]] && echo "${KEYMAP#*-}")\"/" /etc/default/keyboard
    setupcon --keyboard-only --force 2>/dev/null || say "start.sh: keymap \"$KEYMAP\" could not be loaded; keeping the current one" >&2
  else
    say "start.sh: KEYMAP=\"$KEYMAP\" is not a layout name (e.g. us, de, fr, de-nodeadkeys); keeping the current one" >&2
  fi
fi

if ((config_network)); then
  # start.sh's own code: the client never ran, and ON_FAILURE is about the failback.
  apply_static || exit 7
else
  wait_for_dhcp
fi

# ---- the client ------------------------------------------------------------------------------

flags=()
[[ -n ${AWS_REGION:-} ]] && flags+=(--region "$AWS_REGION")
if [[ -n ${AWS_DRS_ENDPOINT+set} ]]; then
  if [[ -n $AWS_DRS_ENDPOINT ]]; then flags+=(--endpoint "$AWS_DRS_ENDPOINT"); else flags+=(--default-endpoint); fi
fi
[[ -n ${RECOVERY_INSTANCE_ID:-} ]] && flags+=(--recovery-instance-id "$RECOVERY_INSTANCE_ID")
[[ -n ${DM_VALUE_FORMAT:-} ]] && flags+=(--dm-value-format "$DM_VALUE_FORMAT")
[[ -n ${DEVICE_MAPPING:-} ]] && flags+=(--device-mapping "$DEVICE_MAPPING")
((no_prompt)) && flags+=(--no-prompt)

# Keys travel in the environment, where the SDK reads them, never on a command line.
[[ -n ${AWS_ACCESS_KEY:-} ]] && export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY
[[ -n ${AWS_SECRET_KEY:-} ]] && export AWS_SECRET_ACCESS_KEY=$AWS_SECRET_KEY
[[ -n ${AWS_SESSION_TOKEN:-} ]] && export AWS_SESSION_TOKEN
[[ -n ${AWS_STS_ENDPOINT:-} ]] && export AWS_ENDPOINT_URL_STS=$AWS_STS_ENDPOINT
[[ -n ${PROXY:-} ]] && export HTTPS_PROXY=$PROXY
unset AWS_ACCESS_KEY AWS_SECRET_KEY

failback-client "${flags[@]}" "${client_args[@]}"
finish $?
