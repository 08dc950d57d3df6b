#!/usr/bin/env bash
# Install the Debian packages forge's lab, tests and reports need, only when missing.
# podman + runc + mmdebstrap: the container lab. Its nodes find each other by name:
#   netavark + aardvark-dns (podman's network backend on a new machine) or, where
#   podman already runs on CNI, the dnsname plugin. Without them names do not
#   resolve between nodes (--no-install-recommends leaves them out). netavark
#   sets up the lab network with iptables ("netavark: No such file or directory" without it).
# openssh-server: the SSH launcher and deploy tests start their own sshd on 127.0.0.1.
# chromium: HTML report rendering test.
set -euo pipefail
need=()
for pkg in podman runc netavark aardvark-dns iptables golang-github-containernetworking-plugin-dnsname \
           mmdebstrap chromium uidmap openssh-client openssh-server; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing ${need[*]}; run as root or install them with apt" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
