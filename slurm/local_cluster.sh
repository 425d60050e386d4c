#!/usr/bin/env bash
# A one-node SLURM cluster on this machine (slurmctld + slurmd + munged), for trying the cluster path on a
# workstation and for `make test-cluster`. Run as root:
#
#   slurm/local_cluster.sh up       # install slurm-wlm and munge with apt if missing, configure, start; idempotent
#   slurm/local_cluster.sh status   # exit 0 when the node is up and accepting jobs
#   slurm/local_cluster.sh down     # stop the daemons (the installed packages stay)
#
# The node is this host with all its CPUs (nproc) and memory (as slurmd -C reports it), no GPUs; one partition,
# `local` (default), that allows requeue. State, spool and logs live under $GPRL_SLURM_DIR (/tmp/gprl-slurm);
# /etc/slurm/slurm.conf is a link to the configuration written there (an existing slurm.conf that is not ours is
# left alone: then the script stops with a message). Process tracking is proctrack/linuxproc and TaskPlugin is
# task/none, so no cgroup set-up is needed (containers included). No accounting database: `sacct` has no data, and
# submitit warns about that and falls back on its own files.
set -euo pipefail

DIR="${GPRL_SLURM_DIR:-/tmp/gprl-slurm}"
CONF="$DIR/slurm.conf"
ETC_CONF=/etc/slurm/slurm.conf
PARTITION=local

say() { echo "[local_cluster] $*"; }
die() { echo "[local_cluster] error: $*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages with apt and starts system daemons)"
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null || die "slurm-wlm and munge are not installed and there is no apt-get to install them"
    say "installing slurm-wlm and munge with apt (about 30 s)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge >/dev/null; } \
        || die "apt-get install slurm-wlm munge failed"
}

node_line() {
    # what slurmd detects (CPUs, sockets, cores, threads, RealMemory), less a little memory for the system
    local line mem
    line="$(slurmd -C | head -1)"
    mem="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$line")"
    sed "s/RealMemory=[0-9]*/RealMemory=$((mem * 95 / 100))/" <<<"$line"
}

write_conf() {
    local host node
    host="$(hostname -s)"
    node="$(node_line)"
    mkdir -p "$DIR"/{state,spool,log}
    cat >"$CONF.tmp" <<EOF
# written by slurm/local_cluster.sh: a one-node cluster on $host
ClusterName=gprl-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job waits until the job credential expires before it starts again (120 s by default)
AuthInfo=cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
# look at the queue every few seconds (default 60 s): a requeued job starts as soon as it is eligible again
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
# requeue: a job may be requeued (scontrol requeue, preemption, submitit's own requeue on timeout)
JobRequeue=1
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
# finished jobs stay visible to squeue/scontrol for 10 min (there is no accounting database for sacct)
MinJobAge=600
KillWait=10
InactiveLimit=0
SlurmdTimeout=60
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO PreemptMode=REQUEUE
EOF
    mv "$CONF.tmp" "$CONF"
    if [ -e "$ETC_CONF" ] || [ -L "$ETC_CONF" ]; then
        [ "$(readlink -f "$ETC_CONF")" = "$(readlink -f "$CONF")" ] \
            || die "$ETC_CONF exists and is not this script's (a real cluster's configuration?): left alone; remove it to use the local cluster"
    else
        mkdir -p "$(dirname "$ETC_CONF")"
        ln -s "$CONF" "$ETC_CONF"
    fi
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return
    fi
    [ -s /etc/munge/munge.key ] || { mungekey --create >/dev/null 2>&1 || create-munge-key -f >/dev/null; }
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.2
    done
    die "munged did not start (see /var/log/munge/munged.log)"
}

node_state() { sinfo -h -N -p "$PARTITION" -o '%T' 2>/dev/null | head -1 || true; }

up() {
    need_root
    install_packages
    write_conf
    start_munge
    # a config change (e.g. another machine size) needs the daemons restarted with it
    if running "$DIR/slurmctld.pid" && ! cmp -s "$CONF" "$DIR/slurm.conf.running"; then
        say "configuration changed: restarting the daemons"
        stop_daemons
    fi
    running "$DIR/slurmctld.pid" || slurmctld -f "$CONF"
    running "$DIR/slurmd.pid" || slurmd -f "$CONF"
    cp "$CONF" "$DIR/slurm.conf.running"
    local state=""
    for _ in $(seq 60); do
        state="$(node_state)"
        case "$state" in
            idle|mixed|allocated|completing) break ;;
            down*|drain*) scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 1
    done
    case "$state" in
        idle|mixed|allocated|completing) ;;
        *) die "the node did not come up (state: ${state:-none}); logs: $DIR/log/" ;;
    esac
    say "up: partition $PARTITION, node $(hostname -s) ($state), $(sinfo -h -N -o '%c CPUs, %m MB')"
}

stop_daemons() {
    local f pid
    for f in slurmd slurmctld; do
        if running "$DIR/$f.pid"; then
            pid="$(cat "$DIR/$f.pid")"
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        fi
    done
}

down() {
    need_root
    stop_daemons
    say "down (state kept under $DIR; munged left running)"
}

status() {
    local state
    state="$(node_state)"
    case "$state" in
        idle|mixed|allocated|completing) say "up: $(sinfo -h -N -o '%N %T, %c CPUs, %m MB')"; return 0 ;;
        *) say "not up (node state: ${state:-no controller})"; return 1 ;;
    esac
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 {up|down|status}" >&2; exit 2 ;;
esac
