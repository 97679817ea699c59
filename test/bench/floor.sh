#!/usr/bin/env bash
# The physical floor of `cluster up` on lab hosts: only what cannot be
# skipped, done straight through `docker exec`, with no SSH and no checks.
#
#   floor.sh MANAGERS ARCHIVE HOST...
#
# HOST... are lab host containers that run Docker (the first is the leader
# and the registry's node; the first MANAGERS are managers). In order:
#   1. on every host in parallel: daemon.json (the registry as insecure)
#      and one dockerd restart; the registry's node also loads ARCHIVE
#      (registry:2);
#   2. swarm init on the first host;
#   3. the other managers join, one at a time;
#   4. the workers join, in parallel;
#   5. the registry service is created and answers /v2/ on its node.
# It prints the seconds it took on its last line.
set -euo pipefail

managers=${1:?usage: floor.sh MANAGERS ARCHIVE HOST...}
archive=${2:?usage: floor.sh MANAGERS ARCHIVE HOST...}
shift 2
hosts=("$@")
((${#hosts[@]} >= managers && managers >= 1)) || { echo "floor: need at least $managers hosts" >&2; exit 2; }
[[ -r $archive ]] || { echo "floor: cannot read $archive" >&2; exit 2; }
port=5000
leader=${hosts[0]}

ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" | awk '{print $1}'; }
now() { date +%s.%N; }

t0=$(now)

# 1. daemon.json and one restart everywhere, in parallel.
json=$(printf '{"insecure-registries": ["%s:%d"]}' "$leader" "$port")
pids=()
for h in "${hosts[@]}"; do
  (
    printf '%s\n' "$json" | docker exec -i "$h" sh -c 'mkdir -p /etc/docker && cat > /etc/docker/daemon.json && systemctl restart docker && until docker info >/dev/null 2>&1; do sleep 0.1; done'
    if [[ $h == "$leader" ]]; then
      docker exec -i "$h" docker load -q <"$archive" >/dev/null
    fi
  ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

# 2. swarm init.
lip=$(ip_of "$leader")
docker exec "$leader" docker swarm init --advertise-addr "$lip" >/dev/null
mtoken=$(docker exec "$leader" docker swarm join-token -q manager)
wtoken=$(docker exec "$leader" docker swarm join-token -q worker)

# 3. managers, one at a time.
for h in "${hosts[@]:1:managers-1}"; do
  docker exec "$h" docker swarm join --token "$mtoken" --advertise-addr "$(ip_of "$h")" "$lip:2377" >/dev/null
done

# 4. workers, in parallel.
pids=()
for h in "${hosts[@]:managers}"; do
  docker exec "$h" docker swarm join --token "$wtoken" --advertise-addr "$(ip_of "$h")" "$lip:2377" >/dev/null &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

# 5. the registry, created and answering.
docker exec "$leader" mkdir -p /var/lib/registry
docker exec "$leader" docker service create --detach --quiet --name registry \
  --constraint "node.hostname==$leader" --endpoint-mode dnsrr \
  --publish "mode=host,target=5000,published=$port" \
  --mount type=bind,src=/var/lib/registry,dst=/var/lib/registry registry:2 >/dev/null
until docker exec "$leader" curl -fsS -m 2 -o /dev/null "http://$leader:$port/v2/" 2>/dev/null; do sleep 0.1; done

awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f\n", b - a }'
