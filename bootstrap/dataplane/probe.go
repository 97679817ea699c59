package dataplane

import (
	"bufio"
	"net/netip"
	"strings"
)

// Label marks the probe's service and network (value: the run's id): a
// check killed midway leaves at most those, and the next check removes
// every one it finds.
const Label = "io.shoal.check"

// DefaultImage is the probe's image: one the lab's (and shoal's usual)
// image archive loads on every node; nothing is pulled.
const DefaultImage = "busybox:latest"

// probeScript runs in each probe task (busybox sh). It waits until
// tasks.$SVC lists $N tasks (the answers of many asks put together), or
// no new one came for $WAIT seconds; pings every task, $BATCH peers at a
// time, with a small packet and with one of the overlay's full MTU ($BIG
// bytes of ICMP payload; busybox ping has no -M do, but the kernel sets
// DF on a ping that fits the interface, so it is not fragmented inside
// the overlay), each up to 3 times, and what failed once more after the
// others; resolves the service's name; prints one line per peer and size. Where the kernels have IP_VS ($VIP set), it
// then asks the responder service through its virtual IP, and through
// the routing mesh at every node's address ($HOSTS) on its published
// port ($PORT), each for up to $SETTLE seconds (a slow node programs its
// mesh for a new service late; seen on VMs under QEMU without KVM). Then
// DONE, and it idles until the check removes it (TERM ends it at once:
// the network is free sooner).
const probeScript = `
trap 'exit 0' TERM
names() { nslookup "$1" 2>/dev/null | awk '/^Name:/ {n=1} n && /^Address/ {print $NF}' | grep '\.'; }
# gather ADDRS NAME TRIES: ADDRS and what NAME resolves to over up to TRIES
# asks, until there are $N. Docker's DNS answers over UDP with what fits
# in 512 bytes (about 11 tasks), shuffled: the union of answers is the list.
gather() {
  all=$1; t=0
  while [ $t -lt $3 ]; do
    all=$(printf '%s\n%s\n' "$all" "$(names "$2")" | grep . | sort -u)
    [ $(echo "$all" | grep -c .) -ge $N ] && break
    t=$((t+1))
  done
  echo "$all"
}
ips=""; had=0; quiet=0
while [ $quiet -lt $WAIT ]; do
  ips=$(gather "$ips" "tasks.$SVC" 8)
  got=$(echo "$ips" | grep -c .)
  [ $got -ge $N ] && break
  if [ $got -gt $had ]; then had=$got; quiet=0; else quiet=$((quiet+1)); fi
  sleep 1
done
echo "T $(echo "$ips" | grep -c .)"
try() {
  for n in 1 2 3; do ping -c 1 -W 2 -s "$2" "$3" >/dev/null 2>&1 && { echo "R $3 $1 ok"; return; }; done
  echo "R $3 $1 fail"
}
k=0
for ip in $ips; do
  try small 56 "$ip" & try big "$BIG" "$ip" &
  k=$((k+1)); [ $((k % BATCH)) -eq 0 ] && wait
done > "${TMPDIR:-/tmp}/pings"
wait
cat "${TMPDIR:-/tmp}/pings"
# What failed gets one more round, all at once, after the others: on a
# swarm whose tasks just started, a node may not carry a peer's endpoint
# yet (a later line for a peer and size replaces the earlier one).
for p in $(awk '$4 == "fail" {print $2 "," $3}' "${TMPDIR:-/tmp}/pings"); do
  ip=${p%,*}; size=${p#*,}; b=56; [ "$size" = big ] && b=$BIG
  try "$size" "$b" "$ip" &
done
wait
echo "S $(gather "" "$SVC" 40 | grep -c .)"
if [ -n "$VIP" ]; then
  # within S seconds, CMD... succeeds (tried every second)
  within() { end=$(( $(date +%s) + $1 )); shift; until "$@"; do [ "$(date +%s)" -ge $end ] && return 1; sleep 1; done; }
  get() { printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 "$1" "$2" 2>/dev/null | grep -q "$VIP"; }
  vip() { a=$(names "$VIP" | head -n 1); [ -n "$a" ] && get "$a" 8080; }
  if within $SETTLE vip; then echo "V ok"; else echo "V fail"; fi
  # a node programs its routing mesh for a new service on its own time
  mesh() { if within $SETTLE get "$1" "$PORT"; then echo "M $1 ok"; else echo "M $1 fail"; fi; }
  for h in $HOSTS; do mesh "$h" & done
  wait
fi
echo DONE
sleep 600 & wait
`

// responderScript runs in each task of the responder service: busybox
// httpd answering its own name ($VIP), which the probe looks for.
const responderScript = `mkdir -p /tmp/w && echo "$VIP" > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w`

// ProbeScript returns the probe task's shell script.
func ProbeScript() string { return probeScript }

// Result is one probe task's output, parsed.
type Result struct {
	// Listed is how many tasks tasks.SERVICE returned; Named how many
	// addresses the service's name resolved to.
	Listed, Named int
	// Peers: peer address -> [small, big] result.
	Peers map[netip.Addr][2]string
	// VIP is the responder reached through its virtual IP (Skipped when
	// not tested); Mesh: a node's address -> the responder reached through
	// the routing mesh there.
	VIP  string
	Mesh map[netip.Addr]string
	Done bool
}

// ParseResult reads a probe task's log (untrusted: it comes from the
// node's engine).
func ParseResult(log string) Result {
	r := Result{Peers: map[netip.Addr][2]string{}, Mesh: map[netip.Addr]string{}, Listed: -1, Named: -1}
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 4096), 64*1024)
	for sc.Scan() {
		r.line(strings.Fields(sc.Text()))
	}
	return r
}

// line reads one line of the log, in fields: DONE, T N (tasks listed),
// S N (addresses named), R ADDR small|big ok|fail (a peer's result),
// V ok|fail (the VIP), M ADDR ok|fail (the routing mesh at a node).
// Anything else, or of another length, is ignored.
func (r *Result) line(f []string) {
	if len(f) == 0 || len(f) != lineFields(f[0]) {
		return
	}
	switch f[0] {
	case "DONE":
		r.Done = true
	case "T":
		r.Listed = atoiOr(f[1], -1)
	case "S":
		r.Named = atoiOr(f[1], -1)
	case "R":
		r.peer(f[1], f[2], f[3])
	case "V":
		if okOrFail(f[1]) {
			r.VIP = f[1]
		}
	case "M":
		r.mesh(f[1], f[2])
	}
}

// lineFields is how many fields a line of kind kw has (0: not a kind).
func lineFields(kw string) int {
	switch kw {
	case "DONE":
		return 1
	case "T", "S", "V":
		return 2
	case "M":
		return 3
	case "R":
		return 4
	}
	return 0
}

// mesh records the routing mesh's result at the node at addr.
func (r *Result) mesh(addr, result string) {
	if a, err := netip.ParseAddr(addr); err == nil && okOrFail(result) {
		r.Mesh[a] = result
	}
}

// peer records the result of the small or big probe of the peer at addr;
// anything else is ignored.
func (r *Result) peer(addr, size, result string) {
	a, err := netip.ParseAddr(addr)
	if err != nil || !okOrFail(result) {
		return
	}
	i, ok := map[string]int{"small": 0, "big": 1}[size]
	if !ok {
		return
	}
	p := r.Peers[a]
	p[i] = result
	r.Peers[a] = p
}

// orFailed: a result the task did not print is a failure.
func orFailed(s string) string {
	if s == "" {
		return Failed
	}
	return s
}

func okOrFail(s string) bool { return s == OK || s == Failed }

func atoiOr(s string, def int) int {
	n := 0
	if s == "" || len(s) > 6 {
		return def
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return def
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// Cells turns the tasks' results into the matrix: addrs maps each
// node's probe task address back to its node, hosts each node to its own
// address (the routing mesh's); a node's missing peer is a failed cell.
// The matrix's DNS gets what each node's task could not resolve, its VIP
// what each task saw of the responder's virtual IP (when tested).
func Cells(nodes []string, results map[string]Result, addrs map[string]netip.Addr, hosts map[string]netip.Addr) Matrix {
	mx := Matrix{DNS: map[string]string{}}
	want := len(addrs)
	for _, from := range nodes {
		r, ok := results[from]
		if !ok || !r.Done {
			continue
		}
		mx.DNS[from] = r.dnsFault(want)
		if r.VIP != Skipped {
			if mx.VIP == nil {
				mx.VIP = map[string]string{}
			}
			mx.VIP[from] = r.VIP
		}
		for _, to := range nodes {
			if a, ok := addrs[to]; ok && to != from {
				mx.Cells = append(mx.Cells, r.cell(from, to, a, hosts[to]))
			}
		}
	}
	return mx
}

// dnsFault says what the task could not resolve of want tasks ("" for
// nothing).
func (r Result) dnsFault(want int) string {
	switch {
	case r.Listed < want:
		return "tasks.SERVICE listed " + itoa(r.Listed) + " of " + itoa(want) + " tasks"
	case r.Named < want:
		return "the service's name resolved to " + itoa(r.Named) + " of " + itoa(want) + " tasks"
	}
	return ""
}

// cell is the result of from's probe of to (its task at a, the node at
// host); one not printed is a failure. The routing mesh is a cell's part
// only where the task tested it (VIP set).
func (r Result) cell(from, to string, a, host netip.Addr) Cell {
	c := Cell{From: from, To: to, Small: Failed, Big: Failed}
	if p, ok := r.Peers[a]; ok {
		c.Small, c.Big = orFailed(p[0]), orFailed(p[1])
	}
	if r.VIP != Skipped {
		c.Mesh = orFailed(r.Mesh[host])
	}
	return c
}

func itoa(n int) string {
	if n < 0 {
		return "no"
	}
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// Clean tells whether a probe saw no failure at all: every node answered,
// every cell crossed, every name resolved, every VIP and routing mesh
// tested answered.
func Clean(mx Matrix) bool {
	if len(mx.Missing) > 0 {
		return false
	}
	for _, c := range mx.Cells {
		if c.Small != OK || c.Big != OK || c.Mesh == Failed {
			return false
		}
	}
	for _, v := range mx.VIP {
		if v != OK {
			return false
		}
	}
	for _, d := range mx.DNS {
		if d != "" {
			return false
		}
	}
	return true
}
