# shoal facts probe
shoal_ping_version() {
  shoal_h=$(curl -fsS -m "$1" -o /dev/null -D - --unix-socket /var/run/docker.sock http://localhost/_ping 2>/dev/null) || return 1
  while IFS= read -r shoal_l; do
    case $shoal_l in
      [Ss]erver:\ Docker/[0-9]*) shoal_l=${shoal_l#*/}; echo "${shoal_l%%[!0-9A-Za-z.+~_-]*}"; return 0 ;;
    esac
  done <<SHOAL_PING
$shoal_h
SHOAL_PING
  return 2
}
shoal_denabled= shoal_dactive= shoal_dpid= shoal_dfrag= shoal_ddropins= shoal_factive= shoal_ping=
shoal_units=$(systemctl show docker.service firewalld.service -p Id -p UnitFileState -p ActiveState -p MainPID -p FragmentPath -p DropInPaths 2>/dev/null)
shoal_id= shoal_en= shoal_ac= shoal_pid= shoal_fr= shoal_di=
while IFS= read -r shoal_l; do
  case $shoal_l in
    Id=*) shoal_id=${shoal_l#*=} ;;
    UnitFileState=*) shoal_en=${shoal_l#*=} ;;
    ActiveState=*) shoal_ac=${shoal_l#*=} ;;
    MainPID=*) shoal_pid=${shoal_l#*=} ;;
    FragmentPath=*) shoal_fr=${shoal_l#*=} ;;
    DropInPaths=*) shoal_di=${shoal_l#*=} ;;
    '') case $shoal_id in
          docker.service) shoal_denabled=$shoal_en shoal_dactive=$shoal_ac shoal_dpid=$shoal_pid shoal_dfrag=$shoal_fr shoal_ddropins=$shoal_di ;;
          firewalld.service) shoal_factive=$shoal_ac ;;
        esac
        shoal_id= shoal_en= shoal_ac= shoal_pid= shoal_fr= shoal_di= ;;
  esac
done <<SHOAL_UNITS
$shoal_units

SHOAL_UNITS
shoal_boot= shoal_dstart=
read -r shoal_boot 2>/dev/null </proc/sys/kernel/random/boot_id
if [ "${shoal_dpid:-0}" != 0 ] && read -r shoal_l 2>/dev/null </proc/"$shoal_dpid"/stat; then
  set -f; set -- ${shoal_l##*) }; set +f; shoal_dstart=${20:-}
fi
[ "$shoal_dactive" = active ] && shoal_ping=$(shoal_ping_version 20)
shoal_iface() { i=$(ip -o addr show 2>/dev/null | awk -v a='10.9.9.9' '$2 != "lo" { split($4, p, "/"); if (p[1] == a || $2 == a) { print $2; exit } }'); [ -n "$i" ] || i=$(ip -o route show default 2>/dev/null | awk '{ for (n = 1; n < NF; n++) if ($n == "dev") { print $(n+1); exit } }'); echo "$i"; }
shoal_zone() { i=$(shoal_iface); z=$(firewall-cmd --get-zone-of-interface="$i" 2>/dev/null) && [ "$z" != "no zone" ] || z=$(firewall-cmd --get-default-zone); echo "$i $z"; }
echo '@@NONCE os-release'; { cat /etc/os-release; } 2>/dev/null; echo
echo '@@NONCE hostname'; { hostname; } 2>/dev/null; echo
echo '@@NONCE hosts'; { cat /etc/hosts; } 2>/dev/null; echo
echo '@@NONCE user'; { id -un 'docker' && id -nG 'docker'; } 2>/dev/null; echo
echo '@@NONCE authorized-keys'; { pw=$(getent passwd 'docker') && cat "$(printf '%s\n' "$pw" | cut -d: -f6)/.ssh/authorized_keys"; } 2>/dev/null; echo
echo '@@NONCE commands'; { for c in systemctl hostnamectl apt-get yum dnf rpm dockerd docker usermod useradd curl ufw firewall-cmd getenforce subscription-manager; do command -v $c >/dev/null && echo $c; done; } 2>/dev/null; echo
echo '@@NONCE docker-version'; { if [ -n "$shoal_ping" ] && e=$(readlink /proc/"$shoal_dpid"/exe) && d=$(command -v dockerd) && [ "$e" = "$(readlink -f "$d")" ]; then echo "Docker version $shoal_ping (the running dockerd)"; else dockerd --version || dockerd-current --version; fi; } 2>/dev/null; echo
echo '@@NONCE docker-package'; { dpkg-query -W -f '${Status} ${Version}\n' docker-ce docker.io; } 2>/dev/null; echo
echo '@@NONCE rpm'; { rpm -q --qf '%{NAME}\n' docker-ce docker-ce-cli containerd.io container-selinux yum-utils dnf-plugins-core docker docker-client docker-common docker-engine podman podman-docker buildah runc; } 2>/dev/null; echo
echo '@@NONCE docker-group'; { getent group docker; } 2>/dev/null; echo
echo '@@NONCE daemon-json-exists'; { test -e /etc/docker/daemon.json && echo yes; } 2>/dev/null; echo
echo '@@NONCE daemon-json'; { cat /etc/docker/daemon.json; } 2>/dev/null; echo
echo '@@NONCE daemon-json-backup'; { test -e /etc/docker/daemon.json.shoal-orig && echo yes; } 2>/dev/null; echo
echo '@@NONCE tls'; (cd /etc/docker/shoal && sha256sum ca.pem server.pem server-key.pem) 2>/dev/null; echo
echo '@@NONCE dropin'; { cat /etc/systemd/system/docker.service.d/shoal.conf; } 2>/dev/null; echo
echo '@@NONCE unit'; (if [ -n "$shoal_dfrag" ]; then set -f; for f in $shoal_dfrag $shoal_ddropins; do printf '# %s\n' "$f"; cat "$f"; echo; done; else systemctl cat docker.service; fi) 2>/dev/null; echo
echo '@@NONCE enabled'; { echo "$shoal_denabled"; } 2>/dev/null; echo
echo '@@NONCE active'; { echo "$shoal_dactive"; } 2>/dev/null; echo
echo '@@NONCE dockerd-pid'; { echo "$shoal_dpid"; } 2>/dev/null; echo
echo '@@NONCE daemon-id'; { echo "$shoal_boot $shoal_dpid $shoal_dstart"; } 2>/dev/null; echo
echo '@@NONCE firewalld'; { echo "$shoal_factive"; } 2>/dev/null; echo
echo '@@NONCE firewalld-zone'; { [ "$shoal_factive" = active ] && shoal_zone; } 2>/dev/null; echo
echo '@@NONCE firewalld-runtime'; { [ "$shoal_factive" = active ] && z=$(shoal_zone | cut -d' ' -f2) && firewall-cmd --zone="$z" --list-all; } 2>/dev/null; echo
echo '@@NONCE firewalld-permanent'; { [ "$shoal_factive" = active ] && z=$(shoal_zone | cut -d' ' -f2) && firewall-cmd --permanent --zone="$z" --list-all; } 2>/dev/null; echo
echo '@@NONCE firewalld-docker-zone'; { shoal_dz=; [ "$shoal_factive" = active ] && { if firewall-cmd --get-zones | tr ' ' '\n' | grep -qx docker; then shoal_dz=yes; else shoal_dz=no; fi; echo "$shoal_dz"; }; } 2>/dev/null; echo
echo '@@NONCE firewalld-all-runtime'; { [ "$shoal_dz" = no ] && firewall-cmd --list-all-zones; } 2>/dev/null; echo
echo '@@NONCE firewalld-all-permanent'; { [ "$shoal_dz" = no ] && firewall-cmd --permanent --list-all-zones; } 2>/dev/null; echo
echo '@@NONCE ip-vs'; { l=no m=no p=no; [ -d /sys/module/ip_vs ] && l=yes; modprobe -nq ip_vs && m=yes; [ "$(cat /etc/modules-load.d/shoal-ipvs.conf)" = '# Written by shoal: Docker Swarm balances a service'\''s virtual IP with IPVS.
# Loaded at every boot, so that the first service after a reboot finds it.
ip_vs' ] && p=yes; echo "loaded=$l module=$m persisted=$p"; } 2>/dev/null; echo
echo '@@NONCE iptables'; { command -v iptables >/dev/null && iptables -S INPUT && echo @@script && cat /etc/shoal/swarm-iptables.sh; echo @@enabled; systemctl is-enabled shoal-swarm-iptables.service; } 2>/dev/null; echo
echo '@@NONCE vmxnet3'; { i=$(shoal_iface); [ -n "$i" ] && d=$(readlink /sys/class/net/"$i"/device/driver) && [ "${d##*/}" = vmxnet3 ] && { printf 'iface=%s\n' "$i"; command -v ethtool >/dev/null && ethtool -k "$i" | grep '^tx-checksum-ip-generic:'; printf 'enabled=%s\n' "$(systemctl is-enabled shoal-vmxnet3-offload.service)"; echo @@unit; cat /etc/systemd/system/shoal-vmxnet3-offload.service; }; } 2>/dev/null; echo
echo '@@NONCE ufw'; { ufw status verbose; } 2>/dev/null; echo
echo '@@NONCE selinux'; { getenforce; } 2>/dev/null; echo
echo '@@NONCE docker-sysconfig'; { grep -h -- '--selinux-enabled' /etc/sysconfig/docker; } 2>/dev/null; echo
echo '@@NONCE kernel'; { uname -r; } 2>/dev/null; echo
echo '@@NONCE package-lock'; (if [ "$shoal_dactive" = active ] && command -v dockerd >/dev/null; then :; else if command -v dpkg >/dev/null; then if command -v lslocks >/dev/null; then lslocks -n -r -o COMMAND,PID,PATH | awk '$3 == "/var/lib/dpkg/lock-frontend" || $3 == "/var/lib/dpkg/lock" || $3 == "/var/lib/apt/lists/lock" || $3 == "/var/cache/apt/archives/lock" { print $1 " (pid " $2 ")" }' | sort -u; fi; else for f in /var/run/yum.pid /var/cache/dnf/rpmdb_lock.pid /var/cache/dnf/metadata_lock.pid /var/cache/dnf/download_lock.pid; do [ -s "$f" ] && p=$(cat "$f") && [ -n "$p" ] && [ -d "/proc/$p" ] && echo "$(cat "/proc/$p/comm" 2>/dev/null) (pid $p)"; done; if command -v lslocks >/dev/null; then lslocks -n -r -o COMMAND,PID,PATH | awk '$3 == "/var/lib/rpm/.rpm.lock" { print $1 " (pid " $2 ")" }' | sort -u; fi; fi; fi) 2>/dev/null; echo
echo '@@NONCE overlay-selinux'; { command -v getenforce >/dev/null && if [ -r /proc/kallsyms ]; then if grep -q ' security_inode_copy_up$' /proc/kallsyms; then echo yes; else echo no; fi; fi; } 2>/dev/null; echo
echo '@@NONCE yum-repos'; { [ -d /etc/yum.repos.d ] && for f in /etc/yum.repos.d/*; do [ -f "$f" ] || continue; printf '%s%s\n' '#@file ' "$f"; case "$f" in *.repo) cat "$f"; echo;; esac; done; } 2>/dev/null; echo
echo '@@NONCE repo-reach'; ([ -d /etc/yum.repos.d ] && command -v curl >/dev/null && hs=$(cat /etc/yum.repos.d/*.repo 2>/dev/null | awk 'function out() { if (en && h != "") print h } /^[ \t]*\[/ { out(); en = 1; h = ""; if ($0 ~ /^[ \t]*\[docker-ce/) en = 0; next } /^[ \t]*enabled[ \t]*=/ { v = $0; sub(/^[^=]*=[ \t]*/, "", v); if (v !~ /^(1|[Tt]rue|[Yy]es)/) en = 0 } /^[ \t]*(baseurl|mirrorlist|metalink)[ \t]*=/ && h == "" { v = $0; sub(/^[^=]*=[ \t]*/, "", v); if (match(v, /^https?:\/\/[^\/ \t?#]+/)) h = substr(v, 1, RLENGTH) } END { out() }' | sort -u) && set -f && for h in $hs; do printf '%s %s\n' "$h" "$(curl -s -o /dev/null --connect-timeout 3 -m 5 -w '%{http_code}' "$h/")" & done; wait) 2>/dev/null; echo
echo '@@NONCE docker-info'; { [ "$shoal_dactive" = active ] && if [ -n "$shoal_ping" ]; then printf '{"Version":"%s"}\n' "$shoal_ping"; else timeout 20 docker version --format '{"Version":{{json .Server.Version}}}'; fi; } 2>/dev/null; echo
echo '@@NONCE end'
