# shoal facts probe
echo '@@NONCE os-release'; (cat /etc/os-release) 2>/dev/null; echo
echo '@@NONCE hostname'; (hostname) 2>/dev/null; echo
echo '@@NONCE hosts'; (cat /etc/hosts) 2>/dev/null; echo
echo '@@NONCE user'; (id -un 'docker' && id -nG 'docker') 2>/dev/null; echo
echo '@@NONCE authorized-keys'; (pw=$(getent passwd 'docker') && cat "$(printf '%s\n' "$pw" | cut -d: -f6)/.ssh/authorized_keys") 2>/dev/null; echo
echo '@@NONCE commands'; (for c in systemctl hostnamectl apt-get yum dnf rpm dockerd docker usermod useradd curl ufw firewall-cmd getenforce; do command -v $c >/dev/null && echo $c; done) 2>/dev/null; echo
echo '@@NONCE docker-version'; (dockerd --version || dockerd-current --version) 2>/dev/null; echo
echo '@@NONCE rpm'; (rpm -q --qf '%{NAME}\n' docker-ce docker-ce-cli containerd.io container-selinux docker yum-utils dnf-plugins-core) 2>/dev/null; echo
echo '@@NONCE docker-group'; (getent group docker) 2>/dev/null; echo
echo '@@NONCE daemon-json-exists'; (test -e /etc/docker/daemon.json && echo yes) 2>/dev/null; echo
echo '@@NONCE daemon-json'; (cat /etc/docker/daemon.json) 2>/dev/null; echo
echo '@@NONCE daemon-json-backup'; (test -e /etc/docker/daemon.json.shoal-orig && echo yes) 2>/dev/null; echo
echo '@@NONCE tls'; (cd /etc/docker/shoal && sha256sum ca.pem server.pem server-key.pem) 2>/dev/null; echo
echo '@@NONCE dropin'; (cat /etc/systemd/system/docker.service.d/shoal.conf) 2>/dev/null; echo
echo '@@NONCE unit'; (systemctl cat docker.service) 2>/dev/null; echo
echo '@@NONCE enabled'; (systemctl is-enabled docker) 2>/dev/null; echo
echo '@@NONCE active'; (systemctl is-active docker) 2>/dev/null; echo
echo '@@NONCE dockerd-pid'; (systemctl show -p MainPID --value docker) 2>/dev/null; echo
echo '@@NONCE firewalld'; (systemctl is-active firewalld) 2>/dev/null; echo
echo '@@NONCE firewalld-runtime'; (systemctl is-active -q firewalld && firewall-cmd --list-all) 2>/dev/null; echo
echo '@@NONCE firewalld-permanent'; (systemctl is-active -q firewalld && firewall-cmd --permanent --list-all) 2>/dev/null; echo
echo '@@NONCE ufw'; (ufw status verbose) 2>/dev/null; echo
echo '@@NONCE selinux'; (getenforce) 2>/dev/null; echo
echo '@@NONCE docker-sysconfig'; (grep -h -- '--selinux-enabled' /etc/sysconfig/docker) 2>/dev/null; echo
echo '@@NONCE docker-info'; (systemctl is-active -q docker && { curl -fsS -m 20 --unix-socket /var/run/docker.sock http://localhost/version || timeout 20 docker version --format '{"Version":{{json .Server.Version}}}'; }) 2>/dev/null; echo
echo '@@NONCE end'
