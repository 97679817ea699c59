#!/usr/bin/env bash
# lab.sh - the shoal test lab: Debian "hosts" that are systemd containers on a
# Docker bridge network, reachable over SSH, optionally running their own
# Docker Engine. Everything is built offline from the Debian mirror (no image
# registry is reachable here). docs/lab.md says why each flag is what it is.
#
# Output contract: stdout carries only results (an IP, an archive path);
# every diagnostic goes to stderr.
#
#   lab.sh setup      install docker.io debootstrap openssh-client iproute2 rsync sshfs rpm ..., start dockerd
#   lab.sh images     build shoal-lab/base:bookworm (debootstrap), and from it
#                     templates/node: shoal-lab/node:bookworm = shoal/node:bookworm
#   lab.sh archive    build registry:2 + busybox:latest, save them to $CACHE/images.tar
#   lab.sh host-up NAME [--image IMG] [--network NET] [--user U --pubkey FILE] [--daemon-json FILE]
#              [--password-user U --password-file F [--sudo-password]] [--only-from IP]
#              [--network2 NET] [--nat-addr CIDR]
#   lab.sh host-rm NAME...
#   lab.sh clean      remove all lab containers and shoal-lab* networks
#
# Environment: SHOAL_LAB_CACHE (default /var/cache/shoal-lab: rootfs tars and
# images.tar), SHOAL_LAB_MIRROR, SHOAL_LAB_SECURITY_MIRROR, SHOAL_LAB_HOST_TIMEOUT
# (default 90 s), SHOAL_LAB_KEEP=1 (keep a host that failed to come up).
set -euo pipefail
# The lab lives on this machine's own dockerd: a shell that ran
# `eval "$(machine env NODE)"` (as the README does before `make lab-clean`)
# must not send the lab's docker commands to that node.
unset DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_CONTEXT DOCKER_MACHINE_NAME

CACHE=${SHOAL_LAB_CACHE:-/var/cache/shoal-lab}
MIRROR=${SHOAL_LAB_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SHOAL_LAB_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=bookworm
BASE_IMAGE=shoal-lab/base:$SUITE
NODE_IMAGE=shoal-lab/node:$SUITE
PRODUCT_IMAGE=shoal/node:$SUITE
DEFAULT_NETWORK=shoal-lab
LABEL=shoal-lab=1
DOCKERD_LOG=/var/log/shoal-lab-dockerd.log
HOST_TIMEOUT=${SHOAL_LAB_HOST_TIMEOUT:-90} # seconds host-up waits for SSH and docker
# Bump when the image recipe below changes: cached tars and images carry it,
# so a stale cache is rebuilt instead of silently reused.
RECIPE=3
# The node image's Dockerfile and the files it installs (the base gets the
# same sshd settings and host-key unit).
NODE_CONTEXT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../templates/node" && pwd)

BASE_PACKAGES=openssh-server,sudo,iproute2,systemd,systemd-sysv,ca-certificates,curl,procps,kmod,iptables,gnupg
# dpkg-dev and gnupg: the day-two test's local apt repository; python3-yaml:
# the cloud-init template test reads its YAML back with PyYAML; util-linux:
# script(1) gives a command a terminal; rsync, sshfs (and fuse3): machine
# scp -d and machine mount (the docker-machine parity test); rpm: the package
# test reads the .rpm.
HOST_PACKAGES=(docker.io debootstrap openssh-client iproute2 dpkg-dev gnupg python3-yaml util-linux rsync sshfs fuse3 rpm)

# Every capability except SYS_RESOURCE, which is not in this machine's bounding
# set: that is exactly why --privileged fails here. Docker 20.10 rejects the
# names it does not know (BPF, PERFMON, CHECKPOINT_RESTORE), so they are left out.
CAPS=(AUDIT_CONTROL AUDIT_READ AUDIT_WRITE BLOCK_SUSPEND CHOWN DAC_OVERRIDE
  DAC_READ_SEARCH FOWNER FSETID IPC_LOCK IPC_OWNER KILL LEASE LINUX_IMMUTABLE
  MAC_ADMIN MAC_OVERRIDE MKNOD NET_ADMIN NET_BIND_SERVICE NET_BROADCAST NET_RAW
  SETFCAP SETGID SETPCAP SETUID SYSLOG SYS_ADMIN SYS_BOOT SYS_CHROOT SYS_MODULE
  SYS_NICE SYS_PACCT SYS_PTRACE SYS_RAWIO SYS_TIME SYS_TTY_CONFIG WAKE_ALARM)

log() { echo "lab: $*" >&2; }
die() { echo "lab: error: $*" >&2; exit 1; }

# Cleanup actions run (last first) when the script exits, also on failure.
CLEANUP=()
run_cleanup() {
  local i
  for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do eval "${CLEANUP[i]}" || true; done
}
trap run_cleanup EXIT

docker_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
need_docker() { docker_up || die "docker does not answer: run '$0 setup' first"; }

# ---------------------------------------------------------------- setup

cmd_setup() {
  local p missing=()
  for p in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi

  if ! docker_up; then
    # No systemd on the machine: nothing else will start the daemon.
    log "starting dockerd (log: $DOCKERD_LOG)"
    # 9>&-: the daemon must not inherit the cache lock (see lock_cache).
    setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
    local i
    for ((i = 0; i < 60; i++)); do docker_up && break; sleep 1; done
    docker_up || { tail -n 20 "$DOCKERD_LOG" >&2; die "dockerd did not answer within 60 s"; }
  fi
  log "docker $(docker version --format '{{.Server.Version}}') is up"
  # Every systemd host takes inotify instances, all of them root's: past
  # about 20 hosts the next ones exit at boot with status 255 and no log.
  raise_sysctl fs.inotify.max_user_instances 1024
  raise_sysctl fs.inotify.max_user_watches 524288
  # The hosts share this kernel's ARP table (its limits are the kernel's,
  # not a namespace's): a 30-node swarm's overlay probe alone adds about
  # 900 entries, and past gc_thresh3 (1024) new ones fail ("neighbor table
  # overflow") and overlay pings between healthy nodes are lost.
  raise_sysctl net.ipv4.neigh.default.gc_thresh1 4096
  raise_sysctl net.ipv4.neigh.default.gc_thresh2 16384
  raise_sysctl net.ipv4.neigh.default.gc_thresh3 32768
}

raise_sysctl() { # KEY MIN: raise KEY to MIN when it is lower, never lower it
  local cur
  cur=$(sysctl -n "$1" 2>/dev/null) || { log "no sysctl $1"; return 0; }
  ((cur >= $2)) && return 0
  sysctl -qw "$1=$2" >&2 || log "cannot raise $1 from $cur to $2: large labs (20 hosts and more) will fail"
}

# ---------------------------------------------------------------- images

# A rootfs directory must never be deleted while something is mounted in it.
umount_under() {
  local dir=$1 m
  # Deepest mounts first.
  awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" || true; done
}
rm_rootfs() {
  [[ -e $1 ]] || return 0
  umount_under "$1"
  rm -rf --one-file-system "$1"
}

# Run a command in the chroot with a clean environment.
in_chroot() {
  local root=$1
  shift
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"
}

image_current() { # IMAGE: exists and was built from this recipe
  [[ $(docker image inspect -f '{{index .Config.Labels "shoal-lab.recipe"}}' "$1" 2>/dev/null) == "$RECIPE" ]]
}

import_tar() { # TAR IMAGE
  docker import \
    --change 'CMD ["/sbin/init"]' \
    --change 'ENV container=docker' \
    --change "LABEL shoal-lab.recipe=$RECIPE" \
    "$1" "$2" >/dev/null
  log "imported $2"
}

pack_rootfs() { # DIR TAR
  umount_under "$1"
  # /dev, /proc, /sys, /run are provided by the container runtime.
  tar -C "$1" --numeric-owner \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' \
    -cf "$2.tmp" .
  mv "$2.tmp" "$2"
}

# Every host must get its own SSH host keys and machine-id: drop the ones
# made during the build (systemd generates a machine-id at boot when the file
# is empty; shoal-ssh-keygen.service makes the keys).
reset_identity() {
  rm -f "$1"/etc/ssh/ssh_host_* "$1/var/lib/dbus/machine-id"
  : >"$1/etc/machine-id"
}

# Everything the base host needs on top of debootstrap.
configure_base() {
  local r=$1

  cat >"$r/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  # Apt lists plus the docker.io .debs (and deps) in /var/cache/apt/archives:
  # `apt-get install -y docker.io` then works in a host even without network.
  in_chroot "$r" apt-get update -q >&2
  in_chroot "$r" apt-get install -y -q --download-only docker.io >&2

  reset_identity "$r"
  install -m 0644 "$NODE_CONTEXT/shoal-ssh-keygen.service" "$r/etc/systemd/system/shoal-ssh-keygen.service"
  install -m 0644 "$NODE_CONTEXT/sshd-shoal-node.conf" "$r/etc/ssh/sshd_config.d/shoal-node.conf"
  # The audit loginuid cannot always be written in a container; a failure
  # there must not close the SSH session.
  sed -i 's/^session\s\+required\s\+pam_loginuid.so/session optional pam_loginuid.so/' "$r/etc/pam.d/sshd"

  in_chroot "$r" systemctl enable shoal-ssh-keygen.service ssh.service >&2
  # Units that fail or make no sense in a container (no udev, no ttys,
  # read-only /sys, the root fs is the runtime's).
  in_chroot "$r" systemctl mask \
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
    systemd-udev-trigger.service systemd-udev-settle.service \
    getty@tty1.service getty.target console-getty.service serial-getty@.service \
    systemd-remount-fs.service systemd-firstboot.service systemd-modules-load.service \
    sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
    sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount \
    proc-sys-fs-binfmt_misc.automount systemd-binfmt.service \
    kmod-static-nodes.service systemd-journald-audit.socket >&2

  # Docker bind-mounts its own resolv.conf; leave none of the builder's.
  : >"$r/etc/resolv.conf"
}

# The node host: templates/node/Dockerfile on the base image, so that the lab
# and a machine with a registry build the same image. The classic builder,
# explicitly: a docker CLI of 23 or later uses BuildKit only through the
# buildx plugin, which Debian's docker.io 20.10 does not ship;
# apt in the build reaches the Debian mirror, and the base already holds the
# docker.io .debs.
build_node_image() { # TAG
  DOCKER_BUILDKIT=0 docker build --build-arg BASE="$BASE_IMAGE" \
    --label "shoal-lab.recipe=$RECIPE" -t "$1" "$NODE_CONTEXT" >&2
  log "built $1 from $NODE_CONTEXT on $BASE_IMAGE"
}

build_base_tar() {
  local tar=$1 dir=$CACHE/rootfs-base.tmp
  rm_rootfs "$dir"
  CLEANUP+=("rm_rootfs '$dir'")
  log "debootstrap $SUITE into $dir"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$dir" "$MIRROR" >&2
  configure_base "$dir"
  pack_rootfs "$dir" "$tar"
  rm_rootfs "$dir"
}

# Parallel test runs may all ask for the images: one builds, the others wait.
lock_cache() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
}

cmd_images() {
  cmd_setup
  lock_cache
  local base_tar=$CACHE/base-r$RECIPE.tar t0 f
  # Tars of an older recipe, and node tars (docker builds the node image
  # now), are of no use any more.
  for f in "$CACHE"/base-r*.tar "$CACHE"/node-r*.tar; do
    [[ ! -e $f || $f == "$base_tar" ]] || rm -f "$f"
  done

  if ! image_current "$BASE_IMAGE"; then
    t0=$SECONDS
    [[ -f $base_tar ]] || build_base_tar "$base_tar"
    import_tar "$base_tar" "$BASE_IMAGE"
    log "$BASE_IMAGE built in $((SECONDS - t0)) s"
  else
    log "$BASE_IMAGE is there"
  fi

  if ! image_current "$NODE_IMAGE"; then
    t0=$SECONDS
    build_node_image "$NODE_IMAGE"
    log "$NODE_IMAGE built in $((SECONDS - t0)) s"
  else
    log "$NODE_IMAGE is there"
  fi
  # The docker driver's default node image is the same image.
  docker tag "$NODE_IMAGE" "$PRODUCT_IMAGE"
}

# ---------------------------------------------------------------- archive

# Copy a dynamically linked binary's libraries (as ldd lists them) into ROOT.
copy_libs() { # BINARY ROOT
  local lib
  for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
    mkdir -p "$2$(dirname "$lib")"
    cp -L "$lib" "$2$lib"
  done
}

cmd_archive() {
  local archive=$CACHE/images.tar
  cmd_setup
  lock_cache
  if [[ -f $archive ]]; then
    log "$archive is there"
    echo "$archive"
    return
  fi
  local tmp t0=$SECONDS
  tmp=$(mktemp -d)
  CLEANUP+=("rm -rf '$tmp'")

  apt-cache show docker-registry busybox-static >/dev/null 2>&1 || apt-get update -q >&2
  (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root docker-registry busybox-static >&2)
  dpkg-deb -x "$tmp"/docker-registry_*.deb "$tmp/registry-deb"
  dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/busybox-deb"

  # registry:2 - Debian's docker-registry (distribution 2.8) with upstream's config.
  local r=$tmp/registry
  install -D -m 0755 "$tmp/registry-deb/usr/bin/docker-registry" "$r/bin/registry"
  copy_libs "$r/bin/registry" "$r"
  mkdir -p "$r/etc/docker/registry" "$r/var/lib/registry" "$r/tmp"
  chmod 1777 "$r/tmp"
  cat >"$r/etc/docker/registry/config.yml" <<'EOF'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
  tar -C "$r" --numeric-owner -c . | docker import \
    --change 'ENTRYPOINT ["/bin/registry","serve","/etc/docker/registry/config.yml"]' \
    --change 'EXPOSE 5000' --change 'VOLUME ["/var/lib/registry"]' \
    - registry:2 >/dev/null

  # busybox:latest - the static busybox and a symlink per applet.
  local b=$tmp/busybox applet
  install -D -m 0755 "$tmp/busybox-deb/bin/busybox" "$b/bin/busybox"
  for applet in $("$b/bin/busybox" --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$b/bin/$applet"
  done
  mkdir -p "$b/etc" "$b/root" "$b/tmp" "$b/var/www"
  chmod 1777 "$b/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$b/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$b/etc/group"
  tar -C "$b" --numeric-owner -c . | docker import --change 'CMD ["sh"]' - busybox:latest >/dev/null

  docker save -o "$archive.tmp" registry:2 busybox:latest
  chmod 0644 "$archive.tmp"
  mv "$archive.tmp" "$archive"
  log "registry:2 and busybox:latest saved in $((SECONDS - t0)) s"
  echo "$archive"
}

# ---------------------------------------------------------------- hosts

ensure_network() {
  local net=$1
  docker network inspect "$net" >/dev/null 2>&1 && return 0
  # Docker accepts two networks of one name: host-ups running in parallel
  # take turns here, so only the first creates it.
  mkdir -p "$CACHE"
  (
    flock 9
    docker network inspect "$net" >/dev/null 2>&1 ||
      docker network create --driver bridge --label "$LABEL" "$net" >/dev/null
  ) 9>"$CACHE/.network.lock" || die "cannot create network $net"
}

# Put a file at PATH (mode MODE) in a container, created or running, with
# its parent folders: docker cp of a tar stream makes the folders.
put_file() { # CONTAINER SRC PATH MODE
  local stage
  stage=$(mktemp -d)
  install -D -m "$4" "$2" "$stage$3"
  tar -C "$stage" --owner=0 --group=0 -c . | docker cp - "$1:/"
  rm -rf "$stage"
}

host_ip() { # NAME NET
  docker inspect -f "{{(index .NetworkSettings.Networks \"$2\").IPAddress}}" "$1"
}

ssh_answers() { # IP: an SSH banner comes back on port 22
  local banner
  # shellcheck disable=SC2016 # $1 is expanded by the inner bash
  banner=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/22" && head -c 4 <&3' _ "$1" 2>/dev/null) || true
  [[ $banner == SSH- ]]
}

host_up_failed() {
  ((HOST_UP_DONE)) && return 0
  if [[ ${SHOAL_LAB_KEEP:-0} == 1 ]]; then
    log "keeping failed host $1 (SHOAL_LAB_KEEP=1)"
  else
    docker rm -fv "$1" >/dev/null 2>&1 || true
  fi
}

host_diagnostics() {
  log "--- diagnostics for $1"
  docker exec "$1" systemctl --failed --no-pager >&2 || true
  docker exec "$1" journalctl -b --no-pager -n 30 >&2 || true
}

add_user() { # NAME USER PUBKEY
  docker exec -i "$1" bash -euc '
    u=$1
    if ! id -u "$u" >/dev/null 2>&1; then
      # A group of that name may exist already (e.g. "docker" on a node).
      if getent group "$u" >/dev/null; then g=(-g "$u"); else g=(-U); fi
      useradd -m -s /bin/bash "${g[@]}" "$u"
    fi
    echo "$u ALL=(ALL) NOPASSWD:ALL" >"/etc/sudoers.d/90-shoal-lab-${u//./_}"
    chmod 0440 "/etc/sudoers.d/90-shoal-lab-${u//./_}"
    home=$(getent passwd "$u" | cut -d: -f6)
    install -d -m 0700 -o "$u" -g "$(id -gn "$u")" "$home/.ssh"
    cat >"$home/.ssh/authorized_keys"
    chmod 0600 "$home/.ssh/authorized_keys"
    chown "$u:$(id -gn "$u")" "$home/.ssh/authorized_keys"
  ' _ "$2" <"$3"
}

# A user who logs in with a password only (an empty authorized_keys), sshd
# taking passwords; with --sudo-password its sudo asks for the password.
add_password_user() { # NAME USER PASSWORD_FILE SUDO_PASSWORD(0|1)
  docker exec -i "$1" bash -euc '
    u=$1 sudo_pw=$2
    IFS= read -r pw
    if ! id -u "$u" >/dev/null 2>&1; then
      if getent group "$u" >/dev/null; then g=(-g "$u"); else g=(-U); fi
      useradd -m -s /bin/bash "${g[@]}" "$u"
    fi
    printf "%s:%s\n" "$u" "$pw" | chpasswd
    home=$(getent passwd "$u" | cut -d: -f6)
    install -d -m 0700 -o "$u" -g "$(id -gn "$u")" "$home/.ssh"
    : >"$home/.ssh/authorized_keys"
    chown "$u:$(id -gn "$u")" "$home/.ssh/authorized_keys"
    chmod 0600 "$home/.ssh/authorized_keys"
    f="/etc/sudoers.d/90-shoal-lab-${u//./_}"
    if [[ $u != root ]]; then
      if [[ $sudo_pw == 1 ]]; then
        # Asks for the password, with the defaults of sudo (3 tries, the lecture).
        echo "$u ALL=(ALL) ALL" >"$f"
      else
        echo "$u ALL=(ALL) NOPASSWD:ALL" >"$f"
      fi
      chmod 0440 "$f"
    fi
    # First match wins in sshd_config: this sorts before shoal-lab.conf.
    { echo "PasswordAuthentication yes"; echo "KbdInteractiveAuthentication yes"
      [[ $u != root ]] || echo "PermitRootLogin yes"; } >/etc/ssh/sshd_config.d/00-shoal-lab-password.conf
    systemctl reload ssh
  ' _ "$2" "$4" <"$3"
}

cmd_host_up() {
  local name="" image=$NODE_IMAGE net=$DEFAULT_NETWORK user="" pubkey="" daemon_json=""
  local pw_user="" pw_file="" sudo_pw=0 only_from="" net2="" nat_addr=""
  while (($#)); do
    case $1 in
      --password-user) pw_user=${2:?--password-user needs a value}; shift 2 ;;
      --password-file) pw_file=${2:?--password-file needs a value}; shift 2 ;;
      --sudo-password) sudo_pw=1; shift ;;
      --only-from) only_from=${2:?--only-from needs a value}; shift 2 ;;
      --network2) net2=${2:?--network2 needs a value}; shift 2 ;;
      --nat-addr) nat_addr=${2:?--nat-addr needs a value}; shift 2 ;;
      --image) image=${2:?--image needs a value}; shift 2 ;;
      --network) net=${2:?--network needs a value}; shift 2 ;;
      --user) user=${2:?--user needs a value}; shift 2 ;;
      --pubkey) pubkey=${2:?--pubkey needs a value}; shift 2 ;;
      --daemon-json) daemon_json=${2:?--daemon-json needs a value}; shift 2 ;;
      -*) die "host-up: unknown option $1" ;;
      *) [[ -z $name ]] || die "host-up: one NAME only"; name=$1; shift ;;
    esac
  done
  [[ -n $name ]] || die "usage: $0 host-up NAME [--image IMG] [--network NET] [--user U --pubkey FILE] [--daemon-json FILE]"
  [[ -z $user || -n $pubkey ]] || die "host-up: --user needs --pubkey"
  [[ -z $pubkey || -n $user ]] || die "host-up: --pubkey needs --user"
  [[ -z $pubkey || -r $pubkey ]] || die "host-up: cannot read $pubkey"
  [[ -z $daemon_json || -r $daemon_json ]] || die "host-up: cannot read $daemon_json"
  [[ -z $pw_user || -r $pw_file ]] || die "host-up: --password-user needs a readable --password-file"
  need_docker
  docker image inspect "$image" >/dev/null 2>&1 || die "image $image missing: run '$0 images'"
  ensure_network "$net"

  local caps=() c
  for c in "${CAPS[@]}"; do caps+=(--cap-add "$c"); done
  # /sys/fs/cgroup is the host's (cgroup v1), writable: systemd and the inner
  # dockerd both create cgroups. /var/lib/docker is a volume so the inner
  # dockerd stores images on a real filesystem, not on the container's overlay.
  docker create --name "$name" --hostname "$name" --network "$net" \
    --label "$LABEL" \
    "${caps[@]}" \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --security-opt systempaths=unconfined \
    --device-cgroup-rule='a *:* rwm' \
    --tmpfs /run --tmpfs /run/lock \
    -v /sys/fs/cgroup:/sys/fs/cgroup \
    -v /var/lib/docker \
    --env container=docker \
    --stop-signal SIGRTMIN+3 \
    "$image" /sbin/init >/dev/null
  # A host that did not come up is removed (after its diagnostics), so that a
  # retry can take the same name; SHOAL_LAB_KEEP=1 keeps it for a look.
  HOST_UP_DONE=0
  CLEANUP+=("host_up_failed '$name'")
  # Files that must be in place before systemd starts the daemons.
  [[ -z $daemon_json ]] || put_file "$name" "$daemon_json" /etc/docker/daemon.json 0644
  if [[ -n $net2 ]]; then
    ensure_network "$net2"
    docker network connect "$net2" "$name"
  fi
  docker start "$name" >/dev/null

  local ip deadline=$((SECONDS + HOST_TIMEOUT))
  ip=$(host_ip "$name" "$net")
  [[ -n $ip ]] || die "host $name has no address on $net"
  until ssh_answers "$ip"; do
    ((SECONDS < deadline)) || { host_diagnostics "$name"; die "host $name: no SSH on $ip:22 within $HOST_TIMEOUT s"; }
    sleep 1
  done
  [[ -z $user ]] || add_user "$name" "$user" "$pubkey"
  [[ -z $pw_user ]] || add_password_user "$name" "$pw_user" "$pw_file" "$sudo_pw"
  if docker exec "$name" test -x /usr/bin/dockerd; then
    until docker exec "$name" docker info >/dev/null 2>&1; do
      ((SECONDS < deadline)) || { host_diagnostics "$name"; die "host $name: inner docker not up within $HOST_TIMEOUT s"; }
      sleep 1
    done
  fi
  # The same address on every host's first interface, as VirtualBox's NAT
  # gives every VM 10.0.2.15 (no dummy interfaces here: no module for them).
  [[ -z $nat_addr ]] || docker exec "$name" ip addr add "$nat_addr" dev eth0
  # SSH only from one address (a jump host): a firewall rule in the host,
  # not a missing route. Last, so that the checks above could reach it.
  [[ -z $only_from ]] || docker exec "$name" sh -ec "iptables -I INPUT -p tcp --dport 22 ! -s $only_from -j DROP"
  HOST_UP_DONE=1
  log "host $name is up at $ip ($image)"
  echo "$ip"
}

cmd_host_rm() {
  local n label
  for n in "$@"; do
    label=$(docker container inspect -f '{{index .Config.Labels "shoal-lab"}}' "$n" 2>/dev/null) || continue
    [[ $label == 1 ]] || die "host-rm: $n is not a lab container (no label $LABEL)"
    docker rm -fv "$n" >/dev/null
  done
}

cmd_clean() {
  need_docker
  local ids net failed=0
  ids=$(docker ps -aq --filter "label=$LABEL")
  # shellcheck disable=SC2086 # one id per word
  [[ -z $ids ]] || docker rm -fv $ids >/dev/null
  # One by one: a network still used by a non-lab container is reported, the
  # others are removed all the same.
  for net in $(docker network ls --format '{{.Name}}' | grep '^shoal-lab' || true); do
    docker network rm "$net" >/dev/null || { log "cannot remove network $net"; failed=1; }
  done
  ((failed == 0)) || die "clean: some networks are still in use"
  log "clean"
}

usage() {
  sed -n '/^#   lab.sh/s/^#   //p' "$0" >&2
  exit 2
}

case ${1:-} in
  setup) cmd_setup ;;
  images) cmd_images ;;
  archive) cmd_archive ;;
  host-up) shift; cmd_host_up "$@" ;;
  host-rm) shift; cmd_host_rm "$@" ;;
  clean) cmd_clean ;;
  *) usage ;;
esac
