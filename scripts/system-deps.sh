#!/usr/bin/env bash
# Install the Debian packages forge needs, only when missing (Debian 12 and 13).
#   bash scripts/system-deps.sh        everything: the lab, the tests, the reports
#   bash scripts/system-deps.sh lab    only what `make venv` and `forge lab up` need
#
# venv:  python3-venv (Debian splits `python3 -m venv` out of python3).
# lab:   podman + runc + conmon run systemd containers; mmdebstrap builds the node
#        image; podman's network backend is netavark, which calls iptables or nft to
#        wire the lab network (left out by --no-install-recommends: without them
#        `forge lab up` stops at "netavark: No such file or directory") and
#        aardvark-dns so nodes resolve each other by name. Where podman still runs
#        on CNI, the dnsname plugin does that job (Debian 12 only).
#        provision/lab/prereqs.py is the same list as forge checks it.
# tests: openssh-server (the SSH launcher and deploy tests start their own sshd on
#        127.0.0.1), chromium (HTML report rendering test), uidmap, numactl (the
#        gpudirect runs' NUMA binding is run for real on this machine's node 0).
set -euo pipefail
group="${1:-all}"
venv=(python3-venv python3-pip)
lab=(podman runc conmon netavark aardvark-dns iptables nftables mmdebstrap openssh-client tar
     ca-certificates)
optional=(golang-github-containernetworking-plugin-dnsname)   # not in Debian 13
tests=(openssh-server chromium uidmap numactl)
case "$group" in
  lab) wanted=("${venv[@]}" "${lab[@]}") ;;
  all) wanted=("${venv[@]}" "${lab[@]}" "${tests[@]}") ;;
  *) echo "system-deps: unknown group '$group' (lab or all)" >&2; exit 2 ;;
esac
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
need=()
for pkg in "${wanted[@]}"; do installed "$pkg" || need+=("$pkg"); done
maybe=()
for pkg in "${optional[@]}"; do installed "$pkg" || maybe+=("$pkg"); done
[ ${#need[@]} -eq 0 ] && [ ${#maybe[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  [ ${#need[@]} -eq 0 ] && exit 0
  echo "system-deps: missing ${need[*]}; run as root (sudo bash $0) or apt-get install them" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
for pkg in "${maybe[@]}"; do   # only what this release still ships
  apt-cache show "$pkg" >/dev/null 2>&1 && need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
