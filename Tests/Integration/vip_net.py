"""Network namespaces for the two-gproxy VIP test: a bridge in its own namespace, three hosts on it
(two proxy hosts and a client), and a veth from the root namespace, where the Patroni cluster listens
on 127.0.0.1. Addresses come from 198.18.0.0/15 (RFC 2544, benchmarking); no namespace has a default
route, so nothing is routed outside the machine.

    root ns  gv<id>r  198.18.0.1 ─┐
    <id>-p1  eth0     198.18.0.11 ├─ bridge br0 in namespace <id>-br
    <id>-p2  eth0     198.18.0.12 │   (VIP 198.18.0.100 on whichever proxy host is MASTER)
    <id>-cl  eth0     198.18.0.20 ┘

The cluster is reached from the namespaces at 198.18.0.1:<the node's own port>, by kernel NAT in the
root namespace (nftables, one table of this test's own): DNAT to 127.0.0.1 (with route_localnet on the
root veth only) and SNAT of the source to 127.0.0.1, so PostgreSQL's and Patroni's `127.0.0.1` trust
and listen addresses stay as they are. Kernel NAT rather than a user-space forwarder: a port nothing
listens on still answers RST (connection refused), exactly as on 127.0.0.1, which is what gproxy's
redispatch and the write numbers depend on.

Everything is torn down by `Topology.destroy()` (namespaces, the root veth, the nft table), which
the test registers as a finalizer before creating anything.
"""
from __future__ import annotations

import os
import subprocess

ROOT_IP = "198.18.0.1"
HOSTS = {"p1": "198.18.0.11", "p2": "198.18.0.12", "cl": "198.18.0.20"}
VIP = "198.18.0.100"
PREFIX = 24


def sh(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, input=input, text=True, capture_output=True)


class Topology:
    def __init__(self, tag: str | None = None):
        self.tag = tag or f"gv{os.getpid() % 100000}"
        self.bridge_ns = f"{self.tag}-br"
        self.root_if = f"{self.tag}r"[:15]
        self.nft_table = f"{self.tag}_nat"
        self.created_ns: list[str] = []
        self.created_links: list[str] = []
        self.nft_created = False

    def ns(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def exec(self, host: str, *args: str) -> list[str]:
        """The argv running `args` inside `host`'s namespace."""
        return ["ip", "netns", "exec", self.ns(host), *args]

    def create(self, nat_ports: list[int]) -> "Topology":
        self._add_ns(self.bridge_ns)
        sh("ip", "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.bridge_ns, "link", "set", "br0", "up")
        for host, ip in HOSTS.items():
            ns = self.ns(host)
            self._add_ns(ns)
            peer = f"v{host}"
            sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", self.bridge_ns)
            sh("ip", "-n", self.bridge_ns, "link", "set", peer, "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", f"{ip}/{PREFIX}", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        # root namespace leg
        sh("ip", "link", "add", self.root_if, "type", "veth", "peer", "name", "vroot", "netns", self.bridge_ns)
        self.created_links.append(self.root_if)
        sh("ip", "-n", self.bridge_ns, "link", "set", "vroot", "master", "br0", "up")
        sh("ip", "addr", "add", f"{ROOT_IP}/{PREFIX}", "dev", self.root_if)
        sh("ip", "link", "set", self.root_if, "up")
        sh("sysctl", "-q", "-w", f"net.ipv4.conf.{self.root_if}.route_localnet=1")
        ports = ", ".join(str(p) for p in sorted(set(nat_ports)))
        rules = f"""
table ip {self.nft_table} {{
    chain pre {{
        type nat hook prerouting priority -100; policy accept;
        iifname "{self.root_if}" ip daddr {ROOT_IP} tcp dport {{ {ports} }} dnat to 127.0.0.1
    }}
    chain inp {{
        type nat hook input priority 100; policy accept;
        ip saddr 198.18.0.0/15 ip daddr 127.0.0.1 snat to 127.0.0.1
    }}
}}
"""
        self.nft_created = True
        sh("nft", "-f", "-", input=rules)
        return self

    def _add_ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.created_ns.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def vip_holder(self) -> str | None:
        """p1, p2 or None: which proxy host has the VIP on its interface now."""
        for host in ("p1", "p2"):
            out = sh("ip", "-n", self.ns(host), "-o", "-4", "addr", "show", "dev", "eth0", check=False).stdout
            if f" {VIP}/" in out:
                return host
        return None

    def destroy(self) -> None:
        if self.nft_created:
            sh("nft", "delete", "table", "ip", self.nft_table, check=False)
            self.nft_created = False
        for link in self.created_links:
            sh("ip", "link", "del", link, check=False)
        self.created_links = []
        for ns in reversed(self.created_ns):
            sh("ip", "netns", "del", ns, check=False)
        self.created_ns = []
