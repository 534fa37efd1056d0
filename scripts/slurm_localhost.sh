#!/usr/bin/env bash
# Brings up a one-node Slurm cluster on this machine (Debian/Ubuntu packages, no systemd, no cgroups),
# so that tests can submit jobs through submitit's SlurmExecutor. Idempotent: a second run finds the
# cluster up and changes nothing.
#
#   scripts/slurm_localhost.sh          install what is missing, start munged + slurmctld + slurmd,
#                                       wait until the node is idle; exit 0 when it is
#   scripts/slurm_localhost.sh --stop   stop the three daemons (packages and config stay)
#   scripts/slurm_localhost.sh --status print the node state; exit 0 if the cluster is usable
#
# On failure it prints ONE line starting with "slurm_localhost: FAILED:" on stderr and exits 1, so CI can
# fall back to submitit's local executor. Needs root (re-runs itself with `sudo -n` when it can).
# Environment: SLURM_LOCALHOST_TIMEOUT (seconds to wait for the node, default 60),
#              SLURM_LOCALHOST_FORCE=1 (replace an /etc/slurm/slurm.conf this script did not write).
set -Eeuo pipefail

say() { echo "slurm_localhost: $*"; }
fail() { echo "slurm_localhost: FAILED: $*" >&2; exit 1; }
trap 'fail "unexpected error (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

mode=start
case "${1:-}" in
  "") ;;
  --stop) mode=stop ;;
  --status) mode=status ;;
  -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) fail "unknown option '$1' (use --stop, --status or no option)" ;;
esac

CONF=/etc/slurm/slurm.conf
MARK="# Written by scripts/slurm_localhost.sh"
LOGDIR=/var/log/slurm
APTLOG=/var/log/slurm_localhost-apt.log
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
TIMEOUT="${SLURM_LOCALHOST_TIMEOUT:-60}"
NODE="$(hostname -s 2>/dev/null || true)"
NODE="${NODE:-localhost}"

# pid from a pid file when that process is alive and is the named program
alive() { # name pidfile
  local pid
  [ -s "$2" ] || return 1
  pid="$(cat "$2" 2>/dev/null)" || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  case "$(cat "/proc/$pid/comm" 2>/dev/null || true)" in "$1"*) echo "$pid" ;; *) return 1 ;; esac
}

stop_one() { # name pidfile
  local pid
  pid="$(alive "$1" "$2")" || { say "$1 not running"; return 0; }
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  say "stopped $1 (pid $pid)"
}

node_state() { sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -1 || true; }

last_log_line() { # file: the last error-ish line of a log, for the one-line failure message
  [ -r "$1" ] || { echo "no log at $1"; return 0; }
  # skip the harmless noise of a fresh install (no PMIx library, no saved state yet)
  { grep -iE 'error|fatal|fail' "$1" | grep -viE 'pmix|MPI: Cannot|state file|NOTE: Trying backup' \
      || tail -n 1 "$1"; } | tail -n 1 | cut -c1-300 || true
}

if [ "$mode" = status ]; then
  command -v sinfo >/dev/null 2>&1 || fail "sinfo not installed"
  st="$(node_state)"
  case "$st" in
    idle|mixed|allocated|completing) say "node $NODE is $st"; exit 0 ;;
    *) fail "cluster not usable: node $NODE state '${st:-no answer from slurmctld}'" ;;
  esac
fi

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    exec sudo -n --preserve-env=SLURM_LOCALHOST_TIMEOUT,SLURM_LOCALHOST_FORCE bash "$0" "$@"
  fi
  fail "must run as root (or with passwordless sudo) to install packages and start munged/slurmctld/slurmd"
fi

# one run at a time (two CI steps starting it together must not race); the daemons get fd 9 closed
exec 9>/run/slurm_localhost.lock
flock -w 120 9 || fail "another slurm_localhost.sh run holds /run/slurm_localhost.lock"

if [ "$mode" = stop ]; then
  stop_one slurmd "$SLURMD_PID"
  stop_one slurmctld "$CTLD_PID"
  stop_one munged "$MUNGE_PID"
  exit 0
fi

t0=$(date +%s)

# --- 1. packages -------------------------------------------------------------------------------------------
pkgs=(munge slurmctld slurmd slurm-client)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || fail "packages missing (${missing[*]}) and there is no apt-get to install them"
  say "installing ${missing[*]} (apt log: $APTLOG) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >"$APTLOG" 2>&1 || fail "apt-get update failed: $(tail -n 1 "$APTLOG")"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$APTLOG" 2>&1 \
    || fail "apt-get install ${missing[*]} failed: $(tail -n 1 "$APTLOG")"
  say "installed ${missing[*]} in $(( $(date +%s) - t0 )) s"
else
  say "packages present: ${pkgs[*]}"
fi
for b in munged munge unmunge slurmctld slurmd sinfo sbatch scontrol; do
  command -v "$b" >/dev/null 2>&1 || fail "$b not found after installing ${pkgs[*]}"
done

# --- 2. munge ----------------------------------------------------------------------------------------------
getent passwd munge >/dev/null || fail "user 'munge' missing (the munge package should have created it)"
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  if command -v mungekey >/dev/null 2>&1; then
    mungekey --create --keyfile=/etc/munge/munge.key
  else
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  say "created /etc/munge/munge.key"
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if munge_ok; then
  say "munged already running"
else
  runuser -u munge -- /usr/sbin/munged --force </dev/null >/dev/null 2>&1 9>&- \
    || fail "munged did not start: $(last_log_line /var/log/munge/munged.log)"
  for _ in $(seq 50); do munge_ok && break; sleep 0.2; done
  munge_ok || fail "munged started but munge -n | unmunge fails: $(last_log_line /var/log/munge/munged.log)"
  say "started munged (pid $(cat "$MUNGE_PID" 2>/dev/null || echo '?'))"
fi

# --- 3. slurm.conf -----------------------------------------------------------------------------------------
hw="$(slurmd -C 2>/dev/null | grep -m1 '^NodeName=')" || true
[ -n "$hw" ] || fail "slurmd -C printed no NodeName line (cannot detect CPUs/memory)"
hw="$(echo "$hw" | sed -E "s/^NodeName=[^ ]+/NodeName=$NODE/")"

install -d -m 0755 /etc/slurm "$LOGDIR" /var/spool/slurmctld /var/spool/slurmd
new="$(mktemp)"
cat >"$new" <<EOF
$MARK (one-node cluster on localhost for prunelab CI). Rerun the script instead of editing.
ClusterName=localhost
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# no cgroups: works inside containers and VMs without a delegated cgroup tree
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
$hw NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
changed=0
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
  [ "${SLURM_LOCALHOST_FORCE:-0}" = 1 ] \
    || fail "$CONF exists and was not written by this script; set SLURM_LOCALHOST_FORCE=1 to replace it"
  cp -p "$CONF" "$CONF.bak.$(date +%s)"
fi
if ! cmp -s "$new" "$CONF"; then
  install -m 0644 "$new" "$CONF"
  changed=1
  say "wrote $CONF: $hw"
else
  say "$CONF up to date"
fi
rm -f "$new"

# --- 4. daemons --------------------------------------------------------------------------------------------
if [ "$changed" = 1 ]; then  # a new config: restart whatever runs with the old one
  if alive slurmd "$SLURMD_PID" >/dev/null || alive slurmctld "$CTLD_PID" >/dev/null; then
    say "config changed: restarting slurm daemons"
    stop_one slurmd "$SLURMD_PID"
    stop_one slurmctld "$CTLD_PID"
  fi
fi
if pid="$(alive slurmctld "$CTLD_PID")"; then
  say "slurmctld already running (pid $pid)"
else
  slurmctld </dev/null >>"$LOGDIR/slurmctld.stdout" 2>&1 9>&- \
    || fail "slurmctld did not start: $(last_log_line "$LOGDIR/slurmctld.log")"
  say "started slurmctld"
fi
if pid="$(alive slurmd "$SLURMD_PID")"; then
  say "slurmd already running (pid $pid)"
else
  slurmd -N "$NODE" </dev/null >>"$LOGDIR/slurmd.stdout" 2>&1 9>&- \
    || fail "slurmd did not start: $(last_log_line "$LOGDIR/slurmd.log")"
  say "started slurmd"
fi

# --- 5. wait for the node ----------------------------------------------------------------------------------
deadline=$(( $(date +%s) + TIMEOUT ))
resumed=0
st=""
while :; do
  st="$(node_state)"
  case "$st" in
    idle|mixed|allocated|completing) break ;;
    drain*|down*|fail*)
      if [ "$resumed" = 0 ]; then scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true; resumed=1; fi ;;
  esac
  if [ "$(date +%s)" -ge $(( deadline - TIMEOUT + 5 )) ]; then  # daemons have had 5 s to write pid files
    alive slurmctld "$CTLD_PID" >/dev/null || fail "slurmctld died: $(last_log_line "$LOGDIR/slurmctld.log")"
    alive slurmd "$SLURMD_PID" >/dev/null || fail "slurmd died: $(last_log_line "$LOGDIR/slurmd.log")"
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    reason="$(sinfo -h -N -n "$NODE" -o '%E' 2>/dev/null | head -1 || true)"
    fail "node $NODE not idle after ${TIMEOUT}s (state '${st:-no answer from slurmctld}'${reason:+, reason: $reason}); logs in $LOGDIR"
  fi
  sleep 1
done
say "cluster up in $(( $(date +%s) - t0 )) s: $(sinfo -h -o '%P %a %l %D %T %N' | head -1)"
say "stop it with: $0 --stop"
