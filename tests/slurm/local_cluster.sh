#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the `slurm` tests (no systemd: daemons are started directly).
#   tests/slurm/local_cluster.sh install   # Debian packages slurmctld slurmd slurm-client munge (needs root + apt)
#   tests/slurm/local_cluster.sh start     # write slurm.conf, start munged, slurmctld, slurmd; wait until the node is idle
#   tests/slurm/local_cluster.sh stop
#   tests/slurm/local_cluster.sh status
# Settings that matter (found on this sandbox): no accounting daemon, so the Snakemake profile checks job status
# with squeue, which needs finished jobs to stay visible: MinJobAge=300 s. MailProg=/bin/true; linuxproc/none
# plugins because cgroups are not available here.
set -euo pipefail
# the daemons live in sbin, which a non-login shell's PATH may lack
export PATH="$PATH:/usr/sbin:/sbin"

CONF_DIR=/etc/slurm
STATE=/var/spool/slurmctld
SPOOL=/var/spool/slurmd
LOGS=/var/log/slurm

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
     && command -v munged >/dev/null; then
    echo "slurm already installed: $(slurmctld -V)"; return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "cannot install SLURM: needs root and apt-get" >&2; return 3
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
  echo "installed $(slurmctld -V)"
}

write_conf() {
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  mkdir -p "$CONF_DIR" "$STATE" "$SPOOL" "$LOGS"
  cat > "$CONF_DIR/slurm.conf" <<CONF
ClusterName=rwmtest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MailProg=/bin/true
MinJobAge=300
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  install
  write_conf
  mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  fi
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  pgrep -x munged >/dev/null || runuser -u munge -- munged --force 2>/dev/null || munged --force
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd
  for _ in $(seq 1 60); do
    state=$(sinfo -h -o %T 2>/dev/null | head -n1 || true)
    case "$state" in
      idle|mixed|allocated) echo "slurm up: node $(hostname -s) is $state"; return 0 ;;
      down*|drain*) scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true ;;
    esac
    sleep 1
  done
  echo "slurm did not come up within 60 s; logs in $LOGS" >&2
  return 4
}

stop() {
  # by the pid files the daemons wrote (slurm.conf above), never by process name
  local pidfile
  for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
    if [ -s "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
  echo "slurm stopped"
}

status() {
  sinfo && squeue
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
