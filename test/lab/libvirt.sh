#!/usr/bin/env bash
# The libvirt lab: libvirtd + virtlogd + the "default" NAT network, and an
# offline-built Debian cloud image with cloud-init and Docker pre-installed.
#
#   test/lab/libvirt.sh setup      install the packages (only when missing), start
#                                  virtlogd and libvirtd (when not running), start the
#                                  default network (defined when missing)
#   test/lab/libvirt.sh image      build ${SHOAL_LAB_CACHE:-/var/cache/shoal-lab}/debian-cloud.qcow2
#                                  when missing, print its path
#   test/lab/libvirt.sh teardown   stop the daemons that "setup" started (CI: no daemon
#                                  outlives the run that started it)
#
# There is no systemd here: the daemons run with -d and their pids are kept in
# $STATE so that teardown stops exactly those. docs/lab.md says why the image
# is built the way it is.
set -euo pipefail

CACHE=${SHOAL_LAB_CACHE:-/var/cache/shoal-lab}
IMAGE=$CACHE/debian-cloud.qcow2
# The recipe's revision: a cached image of another revision is rebuilt.
IMAGE_REV=2
STATE=${SHOAL_LAB_STATE:-/run/shoal-lab}
MIRROR=${SHOAL_LAB_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm

log() { printf '%s libvirt-lab: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# apt_install PKG... installs only the packages that are not installed yet, so
# a warm machine does not touch the network.
apt_install() {
	local missing=()
	for p in "$@"; do
		[[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == *"ok installed"* ]] || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# running NAME PIDFILE: true when the daemon is alive (by its pid file first, by
# exact process name otherwise: a daemon started by someone else is reused).
running() {
	local name=$1 pidfile=$2
	if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then return 0; fi
	pgrep -x "$name" >/dev/null 2>&1
}

wait_for() { # wait_for SECONDS DESCRIPTION CMD...
	local n=$1 what=$2; shift 2
	for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
	die "timed out waiting for $what"
}

setup() {
	need_root
	apt_install libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients \
		qemu-system-x86 qemu-utils dnsmasq-base
	mkdir -p /run/libvirt "$STATE"
	if ! running virtlogd /run/virtlogd.pid; then
		log "starting virtlogd"
		virtlogd -d
		sleep 0.2
		pgrep -nx virtlogd >"$STATE/virtlogd.pid" || true
	fi
	if ! running libvirtd /run/libvirtd.pid; then
		log "starting libvirtd"
		libvirtd -d
		wait_for 30 "libvirtd socket" test -S /run/libvirt/libvirt-sock
		pgrep -nx libvirtd >"$STATE/libvirtd.pid" || true
	fi
	wait_for 30 "libvirtd" virsh -c qemu:///system version
	if ! virsh -q -c qemu:///system net-info default >/dev/null 2>&1; then
		log "defining network default"
		virsh -q -c qemu:///system net-define /usr/share/libvirt/networks/default.xml
	fi
	# No "| grep -q" under pipefail: grep quitting early fails the pipe.
	local info
	info=$(virsh -q -c qemu:///system net-info default)
	if ! grep -Eq '^Active:[[:space:]]+yes' <<<"$info"; then
		log "starting network default"
		virsh -q -c qemu:///system net-start default
	fi
	log "libvirt ready: $(virsh -c qemu:///system version | sed -n 's/^Running hypervisor: //p')"
}

teardown() {
	need_root
	# Only what setup started, by pid, never by name.
	for d in libvirtd virtlogd; do
		if [ -s "$STATE/$d.pid" ]; then
			local pid
			pid=$(cat "$STATE/$d.pid")
			if kill -0 "$pid" 2>/dev/null; then
				log "stopping $d ($pid)"
				kill "$pid" || true
			fi
			rm -f "$STATE/$d.pid"
		fi
	done
}

# image builds the lab's cloud image the way users' cloud images look: an MBR
# disk with one ext4 partition labelled root and extlinux as boot loader, so
# the driver boots it with <boot dev='hd'/> and needs no kernel options.
# Docker is pre-installed: provisioning under TCG then only configures it.
image() {
	need_root
	if [ -s "$IMAGE" ] && [ "$(cat "$IMAGE.rev" 2>/dev/null)" = "$IMAGE_REV" ]; then
		echo "$IMAGE"
		return 0
	fi
	apt_install debootstrap extlinux syslinux-common parted e2fsprogs qemu-utils
	mkdir -p "$CACHE"
	# Globals, not locals: the EXIT trap runs after this function returned.
	work=$(mktemp -d "$CACHE/build.XXXXXX")
	root=$work/root mnt=$work/mnt loop=""
	# shellcheck disable=SC2317 # called through the trap
	cleanup() {
		set +e
		mountpoint -q "$mnt" && umount "$mnt"
		[ -n "$loop" ] && losetup -d "$loop"
		for m in dev/pts dev proc sys; do mountpoint -q "$root/$m" && umount -l "$root/$m"; done
		rm -rf "$work"
	}
	trap cleanup EXIT
	local t0=$SECONDS
	log "debootstrap $SUITE into $root"
	debootstrap --variant=minbase \
		--include=openssh-server,sudo,iproute2,systemd,systemd-sysv,udev,ca-certificates,curl,procps,kmod,iptables,dbus \
		"$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
		{ tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

	# Packages whose configure step fails inside debootstrap go in by chroot.
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" # no daemon starts in the chroot
	chmod +x "$root/usr/sbin/policy-rc.d"
	mount -t proc proc "$root/proc"
	mount -t sysfs sys "$root/sys"
	mount --bind /dev "$root/dev"
	mount --bind /dev/pts "$root/dev/pts"
	# apparmor: the kernel enables AppArmor, and dockerd then refuses to
	# start containers without apparmor_parser (docker.io only recommends it).
	log "installing kernel, cloud-init, docker.io in the chroot"
	chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		linux-image-cloud-amd64 initramfs-tools cloud-init cloud-guest-utils fdisk docker.io apparmor \
		>"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; die "apt-get install in the chroot failed"; }
	for m in dev/pts dev proc sys; do umount -l "$root/$m"; done

	# Per-instance identity must not be baked in: machine-id drives the DHCP
	# client id (two VMs with one machine-id would get one address), host keys
	# come from the seed, cloud-init runs fresh.
	: >"$root/etc/machine-id"
	rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_* "$root/usr/sbin/policy-rc.d"
	rm -rf "$root/var/lib/cloud"/* "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	: >"$root/etc/resolv.conf"
	echo localhost >"$root/etc/hostname"
	echo 'LABEL=root / ext4 defaults,errors=remount-ro 0 1' >"$root/etc/fstab"
	cat >"$root/etc/systemd/network/90-dhcp.network" <<-'EOF'
		[Match]
		Name=e*

		[Network]
		DHCP=yes
	EOF
	# Only NoCloud: probing other datasources costs minutes under TCG.
	echo 'datasource_list: [ NoCloud, None ]' >"$root/etc/cloud/cloud.cfg.d/90-shoal-lab.cfg"
	chroot "$root" systemctl enable systemd-networkd docker serial-getty@ttyS0 >/dev/null 2>&1
	chroot "$root" systemctl mask systemd-networkd-wait-online >/dev/null 2>&1 || true

	local kernel initrd
	kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sort -V | tail -1)
	initrd=$(find "$root/boot" -maxdepth 1 -name 'initrd.img-*' -printf '%f\n' | sort -V | tail -1)
	if [ -z "$kernel" ] || [ -z "$initrd" ]; then die "no kernel/initrd in the chroot"; fi
	mkdir -p "$root/boot/extlinux"
	cat >"$root/boot/extlinux/extlinux.conf" <<-EOF
		DEFAULT linux
		PROMPT 0
		TIMEOUT 1
		LABEL linux
		  LINUX /boot/$kernel
		  INITRD /boot/$initrd
		  APPEND root=LABEL=root rw console=tty0 console=ttyS0,115200n8
	EOF

	log "making the disk (MBR, ext4 'root', extlinux)"
	local raw=$work/disk.raw
	truncate -s 3G "$raw"
	parted -s "$raw" mklabel msdos mkpart primary ext4 1MiB 100% set 1 boot on
	# No partition nodes without udev: a loop device at the partition's offset.
	loop=$(losetup -f --show -o 1048576 "$raw")
	# syslinux cannot boot from ext4 with the 64bit feature.
	mkfs.ext4 -q -F -L root -O ^64bit -d "$root" "$loop"
	mkdir -p "$mnt"
	mount "$loop" "$mnt"
	extlinux --install "$mnt/boot/extlinux" >/dev/null
	umount "$mnt"
	losetup -d "$loop"
	loop=""
	dd if=/usr/lib/EXTLINUX/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
	qemu-img convert -O qcow2 "$raw" "$work/image.qcow2"
	mv "$work/image.qcow2" "$IMAGE"
	echo "$IMAGE_REV" >"$IMAGE.rev"
	log "built $IMAGE in $((SECONDS - t0))s ($(du -h "$IMAGE" | cut -f1))"
	cleanup
	trap - EXIT
	echo "$IMAGE"
}

case "${1:-}" in
setup) setup ;;
image) image ;;
teardown) teardown ;;
*)
	echo "usage: $0 setup|image|teardown" >&2
	exit 2
	;;
esac
