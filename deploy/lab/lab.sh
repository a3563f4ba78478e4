# Shared by deploy/lab/up, exec and down (sourced, not run).
#
# The lab lives in one outer network + mount namespace made by `unshare -n -m`, kept alive by
# a holder process (its PID in $LAB_STATE/holder.pid). Inside it, a tmpfs on /run/netns holds
# a private set of `ip netns` namespaces, and /etc/hosts is bind-mounted to the lab's own.
# The outer namespace itself is the lab's backbone router ("core").
LAB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_STATE=${TSUNAGU_LAB_DIR:-$LAB_REPO/var/lab}
LAB_NAMESPACES=(dc1 dc2 dc3 edge ward home strict)

lab_log() { echo "lab: $*" >&2; }

lab_holder() {
  local pid
  pid=$(cat "$LAB_STATE/holder.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sleep ] \
    || return 1
  echo "$pid"
}

# Run a command in the outer (core) namespace.
lab_core() { nsenter -t "$LAB_HOLDER" -n -m --wd="$PWD" -- "$@"; }

# Run a command in lab namespace $1.
lab_in() { local ns=$1; shift; nsenter -t "$LAB_HOLDER" -n -m --wd="$PWD" -- ip netns exec "$ns" "$@"; }

# The inodes of every network namespace of the lab (the core's and the children's).
lab_netns_inodes() {
  stat -L -c %i "/proc/$LAB_HOLDER/ns/net"
  lab_core sh -c 'for f in /run/netns/*; do [ -e "$f" ] && stat -L -c %i "$f"; done; true'
}

# Every process whose network namespace is one of the lab's (the holder excluded).
lab_pids() {
  local inodes pid link
  inodes=" $(lab_netns_inodes | tr '\n' ' ') "
  for link in /proc/[0-9]*/ns/net; do
    pid=${link#/proc/}; pid=${pid%%/*}
    [ "$pid" = "$LAB_HOLDER" ] && continue
    link=$(readlink "$link" 2>/dev/null) || continue
    link=${link#net:[}; link=${link%]}
    case "$inodes" in *" $link "*) echo "$pid" ;; esac
  done
}
