#!/usr/bin/env bash
# The floor of `cluster check` on a lab swarm: the work no cross-node test
# of the overlay can do without, through `docker exec` on a manager.
#
#   checkfloor.sh MANAGER N
#
# MANAGER is a lab host container that is a manager of an N-node swarm
# whose nodes all have busybox:latest. It makes a temporary internal
# overlay network and a global service of busybox on it (by image ID, so
# no node asks a registry), waits until the N tasks run, then removes the
# service and waits until the network can be removed.
#
# Why it is a floor: a probe of the overlay between every pair of nodes
# needs a task on every node, on one overlay network, and must leave
# nothing behind; that is all this does. It skips what `cluster check`
# does besides: SSH and the Engine API over it, every node's facts (kernel
# modules, firewall, MTU, the gossip's complaints in dockerd's journal),
# the tasks finding each other by DNS, the pings of every pair at two
# sizes, reading each task's result, and the verdict.
set -euo pipefail

manager=${1:?usage: checkfloor.sh MANAGER N}
n=${2:?usage: checkfloor.sh MANAGER N}
on() { docker exec "$manager" docker "$@"; }

name=floor-$$-$RANDOM
id=$(on image inspect -f '{{.Id}}' busybox:latest)
on network create -d overlay --internal "$name" >/dev/null
on service create -d --no-resolve-image --name "$name" --mode global --network "$name" \
  --restart-condition none "$id" sleep 600 >/dev/null
deadline=$((SECONDS + 600))
until [ "$(on service ps --filter desired-state=running --format '{{.CurrentState}}' "$name" | grep -c '^Running')" -ge "$n" ]; do
  ((SECONDS < deadline)) || { echo "checkfloor: $n tasks not running within 600 s" >&2; exit 1; }
  sleep 0.5
done
on service rm "$name" >/dev/null
until on network rm "$name" >/dev/null 2>&1; do
  ((SECONDS < deadline)) || { echo "checkfloor: network $name not removable within 600 s" >&2; exit 1; }
  sleep 0.5
done
