#!/usr/bin/env bash
# A second "machine" on one Linux host, for trying `mpirun` across hosts without a second computer: a network
# namespace (its own interface 10.77.0.2 and loopback) with its own host name, running sshd; mpirun reaches it over
# ssh like any remote node, and the ranks talk over TCP between 10.77.0.1 and 10.77.0.2 (shared memory excluded with
# --mca btl tcp,self). The file system is shared, as an NFS folder would be. Needs root, iproute2, openssh-server,
# openmpi-bin. Usage: sudo bench/mpi/two-hosts-netns.sh up | down
set -euo pipefail
case "${1:-up}" in
up)
  ip netns add node2
  ip link add veth0 type veth peer name veth1
  ip link set veth1 netns node2
  ip addr add 10.77.0.1/24 dev veth0 && ip link set veth0 up
  ip netns exec node2 ip addr add 10.77.0.2/24 dev veth1
  ip netns exec node2 ip link set veth1 up
  ip netns exec node2 ip link set lo up
  mkdir -p ~/.ssh /run/sshd && chmod 700 ~/.ssh
  [ -f ~/.ssh/id_ed25519 ] || ssh-keygen -q -t ed25519 -N "" -f ~/.ssh/id_ed25519
  grep -qf ~/.ssh/id_ed25519.pub ~/.ssh/authorized_keys 2>/dev/null || cat ~/.ssh/id_ed25519.pub >> ~/.ssh/authorized_keys
  chmod 600 ~/.ssh/authorized_keys
  ssh-keygen -A > /dev/null
  grep -q " node2$" /etc/hosts || echo "10.77.0.2 node2" >> /etc/hosts
  # its own UTS namespace, so the node reports its own host name to mpirun
  ip netns exec node2 unshare --uts sh -c 'hostname node2; exec /usr/sbin/sshd -o ListenAddress=10.77.0.2 -o PermitRootLogin=prohibit-password'
  ssh -o StrictHostKeyChecking=accept-new -o BatchMode=yes node2 hostname
  printf '%s slots=1\nnode2 slots=1\n' "$(hostname)" > hosts
  echo "hostfile: ./hosts; run e.g.:"
  echo "  mpirun --hostfile hosts -np 2 -x PATH --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 ./quill train ..."
  ;;
down)
  pkill -f "sshd -o ListenAddress=10.77.0.2" || true
  ip link del veth0 2>/dev/null || true
  ip netns del node2 2>/dev/null || true
  ;;
*) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
