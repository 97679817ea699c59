#!/usr/bin/env bash
# The floor of `cluster up` on lab hosts that already run Docker: only the
# work a swarm with shoal's registry cannot do without, each step started
# the moment what it needs is done, through `docker exec` (the cheapest
# transport there is to a lab host).
#
#   floor.sh MANAGERS ARCHIVE HOST...
#
# HOST... are lab host containers that run Docker; the first is the leader
# and the registry's node, the first MANAGERS are managers. ARCHIVE is an
# image archive holding registry:2. Per host, in its own background job:
#   - every host: daemon.json (the leader's registry as insecure) and one
#     dockerd restart, all hosts at once;
#   - the leader: `docker swarm init` as soon as its own restart ends; then
#     at once the archive is loaded, the registry service created (port
#     5000 published in host mode, dnsrr, a bind mount) and asked until
#     /v2/ answers on its node;
#   - a manager joins once its own restart and the previous manager's join
#     (the init, for the first) are done: Raft adds one member at a time;
#   - a worker joins once its own restart and the init are done.
# Jobs wait on marker files in a private temporary directory (polled every
# 50 ms, 10 minutes at most); the join tokens are kept there in files only
# the user can read and reach the hosts on docker exec's stdin.
#
# Why it is a floor: it does what `cluster up` must also do to make this
# cluster, and nothing else. It skips what shoal does besides: SSH (logins,
# sessions, sudo), the Engine API over SSH (and its TLS where asked), the
# facts probe, hostnames and the /etc/hosts block, the login user in the
# docker group, the SSH mesh between the nodes (keys, known_hosts, ssh
# config), node labels, the state it keeps, and the final check. It knows
# the hosts are fresh: it reads nothing before it writes.
#
# The benchmark (test/e2e/bench_test.go) times it from process start to
# exit, as it times `cluster up`; the seconds this script prints on its
# last line (from its first command to its last) are for reference.
set -euo pipefail

usage='usage: floor.sh MANAGERS ARCHIVE HOST...'
managers=${1:?$usage}
archive=${2:?$usage}
shift 2
hosts=("$@")
((${#hosts[@]} >= managers && managers >= 1)) || { echo "floor: need at least $managers hosts" >&2; exit 2; }
[[ -r $archive ]] || { echo "floor: cannot read $archive" >&2; exit 2; }
t0=$(date +%s.%N)
port=5000
leader=${hosts[0]}
# Every wait of the script ends 10 minutes after its start.
deadline=$((SECONDS + 600))

umask 077
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

mark() { : >"$dir/$1"; }
# step is what a job is doing, for its error.
step=

# nap sleeps 50 ms without a process: a read that times out on a FIFO no
# one writes to (30 jobs forking sleep 20 times a second would take a
# good part of a core from the work being measured).
mkfifo "$dir/tick"
exec {tick}<>"$dir/tick"
nap() { read -r -t 0.05 -u "$tick" _ || true; }

# await MARKER...: wait until each marker exists; give up when another job
# failed (exit 3: that job says why), or at the deadline.
await() {
  local m
  for m in "$@"; do
    until [[ -e $dir/$m ]]; do
      [[ ! -e $dir/failed ]] || exit 3
      ((SECONDS < deadline)) || { echo "floor: gave up waiting for $m" >&2; exit 1; }
      nap
    done
  done
}

ip_of() { awk -v h="$1" '$1 == h { print $2; exit }' "$dir/ips"; }

# restart HOST [PREFIX]: daemon.json and one dockerd restart, until the
# daemon answers; PREFIX is more shell to run first.
restart() {
  printf '{"insecure-registries": ["%s:%d"]}\n' "$leader" "$port" |
    docker exec -i "$1" sh -c "${2:-}"'mkdir -p /etc/docker && cat >/etc/docker/daemon.json && systemctl restart docker &&
      end=$(($(date +%s) + 600)) && until docker info >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || { echo "dockerd did not answer" >&2; exit 1; }; sleep 0.05; done'
}

# join HOST ROLE: join the swarm as ROLE, the token on stdin.
join() {
  docker exec -i "$1" sh -c 'read -r t && exec docker swarm join --token "$t" --advertise-addr "$1" "$2" >/dev/null' \
    sh "$(ip_of "$1")" "$(ip_of "$leader"):2377" <"$dir/token-$2"
}

# The leader's path: restart, init, then the registry, while the tokens
# are read beside it.
lead() {
  step='daemon.json and the dockerd restart'
  restart "$leader" 'mkdir -p /var/lib/registry && '
  await ips
  step='docker swarm init'
  docker exec "$leader" docker swarm init --advertise-addr "$(ip_of "$leader")" >/dev/null
  (
    step='docker swarm join-token'
    trap 'failing "$leader"' EXIT
    docker exec "$leader" sh -c 'docker swarm join-token -q manager && docker swarm join-token -q worker' >"$dir/tokens"
    { read -r m && read -r w; } <"$dir/tokens"
    printf '%s\n' "$m" >"$dir/token-manager"
    printf '%s\n' "$w" >"$dir/token-worker"
    mark manager-0
  ) &
  local tokens=$!
  step="docker load of $archive"
  docker exec -i "$leader" docker load -q <"$archive" >/dev/null
  step='the registry service, until /v2/ answers'
  docker exec "$leader" sh -c 'docker service create --detach --quiet --name registry \
      --constraint "node.hostname==$1" --endpoint-mode dnsrr \
      --publish "mode=host,target=5000,published=$2" \
      --mount type=bind,src=/var/lib/registry,dst=/var/lib/registry registry:2 >/dev/null &&
    end=$(($(date +%s) + 600)) && until curl -fsS -m 2 -o /dev/null "http://$1:$2/v2/" 2>/dev/null; do
      [ "$(date +%s)" -lt "$end" ] || { echo "the registry did not answer" >&2; exit 1; }; sleep 0.05; done' \
    sh "$leader" "$port"
  step='docker swarm join-token'
  wait "$tokens"
}

# host I: the work of the I-th host.
host() {
  local i=$1 h=${hosts[$1]}
  if ((i == 0)); then
    lead
  elif ((i < managers)); then
    step='daemon.json and the dockerd restart'
    restart "$h"
    await ips "manager-$((i - 1))"
    step='docker swarm join as a manager'
    join "$h" manager
    mark "manager-$i"
  else
    step='daemon.json and the dockerd restart'
    restart "$h"
    await ips manager-0
    step='docker swarm join as a worker'
    join "$h" worker
  fi
}

# failing HOST: run as a job exits; a failure is marked for the others
# and said with the job's step (but not where the job gave up for
# another's failure).
failing() {
  local rc=$?
  ((rc == 0)) || : >"$dir/failed"
  ((rc == 0 || rc == 3)) || echo "floor: $1: $step failed (exit $rc)" >&2
}

pids=()
(
  step='docker inspect of the hosts'
  trap 'failing "this machine"' EXIT
  docker inspect -f '{{.Name}} {{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "${hosts[@]}" |
    sed 's|^/||' >"$dir/ips.part"
  mv "$dir/ips.part" "$dir/ips"
) &
pids+=($!)
for i in "${!hosts[@]}"; do
  (
    trap 'failing "${hosts[$i]}"' EXIT
    host "$i"
  ) &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
((rc == 0)) || { echo "floor: failed" >&2; exit 1; }

awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f\n", b - a }'
