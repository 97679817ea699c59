// Command scale is `make bench-scale`: `cluster up` in process against N
// simulated hosts (test/simhost), a first run then a no-op, at each
// size, with what shoal's own process spends: wall time, CPU (getrusage),
// peak memory, SSH sessions and bytes sent per host, goroutines and open
// files at their peak. The simulated hosts' SSH servers run in a child
// process (this program with -serve), so that their CPU, memory and
// sockets are not counted as shoal's; the hosts' engines are an in-memory
// swarm in shoal's process (machine.Manager.OpenEngine), cheap beside the
// rest. A benchmark, not a test: it fails only when a run fails.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/bootstrap/enginetest"
	"github.com/shoal-dev/shoal/cluster"
	"github.com/shoal-dev/shoal/cluster/clusterfile"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/drivertest"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
	"github.com/shoal-dev/shoal/test/simhost"
)

func main() {
	serve := flag.Bool("serve", false, "run the simulated hosts (the child process)")
	n := flag.Int("n", 0, "with -serve: how many hosts")
	dir := flag.String("dir", "", "with -serve: where the hosts keep their uploads")
	sizes := flag.String("sizes", "100,300,1000", "the numbers of hosts, comma-separated")
	managers := flag.Int("managers", 3, "how many of the hosts are managers")
	parallel := flag.Int("parallel", 32, "cluster up's --parallel")
	cpuprofile := flag.String("cpuprofile", "", "write CPU profiles of the runs at the largest size to this file name, .first and .no-op added")
	memprofile := flag.String("memprofile", "", "write heap profiles of the runs at the largest size, taken near their peak, to this file name, .first and .no-op added")
	flag.Parse()
	if *serve {
		if err := serveHosts(*n, *dir); err != nil {
			fmt.Fprintln(os.Stderr, "scale -serve:", err)
			os.Exit(1)
		}
		return
	}
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v < *managers {
			fmt.Fprintf(os.Stderr, "scale: bad size %q\n", s)
			os.Exit(2)
		}
		ns = append(ns, v)
	}
	fmt.Printf("cluster up on simulated hosts: %d managers, --parallel %d, %d cores, load average %s\n", *managers, *parallel, runtime.NumCPU(), loadavg())
	fmt.Println("N     run    wall      CPU      CPU/host  peak RSS  peak heap  sessions/host  KB sent/host  goroutines  open files")
	for i, size := range ns {
		var prof profiles
		if i == len(ns)-1 {
			prof = profiles{cpu: *cpuprofile, mem: *memprofile}
		}
		if err := runSize(size, *managers, *parallel, prof); err != nil {
			fmt.Fprintf(os.Stderr, "scale: N=%d: %v\n", size, err)
			os.Exit(1)
		}
	}
	fmt.Printf("load average after: %s\n", loadavg())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// serveHosts is the child: n hosts, their endpoints on stdout ("host NAME
// ADDR PORT", then "ready"); a line "stats" on stdin is answered with the
// sessions, logins and bytes received so far; end of stdin ends it.
func serveHosts(n int, dir string) error {
	lab, err := simhost.New(dir)
	if err != nil {
		return err
	}
	defer lab.Close()
	out := bufio.NewWriter(os.Stdout)
	for i := range n {
		h, err := lab.Add(simhost.Name(i), simhost.Addr(i))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "host %s %s %d\n", h.Name, h.Addr, h.Port)
	}
	fmt.Fprintln(out, "ready")
	out.Flush()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "stats" {
			unknown := 0
			for _, h := range lab.Hosts() {
				unknown += len(h.Unknown())
			}
			fmt.Printf("stats %d %d %d %d\n", lab.Sessions.Load(), lab.Logins.Load(), lab.BytesIn.Load(), unknown)
		}
	}
	return nil
}

// hostsProc is the child process with the simulated hosts.
type hostsProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
	eps []simhost.Endpoint
}

func startHosts(n int, dir string) (*hostsProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve", "-n", strconv.Itoa(n), "-dir", dir)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &hostsProc{cmd: cmd, in: in, out: bufio.NewScanner(outp)}
	for p.out.Scan() {
		f := strings.Fields(p.out.Text())
		if len(f) == 1 && f[0] == "ready" {
			return p, nil
		}
		if len(f) != 4 || f[0] != "host" {
			break
		}
		port, _ := strconv.Atoi(f[3])
		p.eps = append(p.eps, simhost.Endpoint{Name: f[1], Addr: f[2], Port: port})
	}
	p.stop()
	return nil, fmt.Errorf("the simulated hosts did not start")
}

// stats are the hosts' SSH sessions, logins, bytes received and unknown
// commands so far.
func (p *hostsProc) stats() (sessions, logins, bytes, unknown int64, err error) {
	if _, err = io.WriteString(p.in, "stats\n"); err != nil {
		return
	}
	if !p.out.Scan() {
		return 0, 0, 0, 0, fmt.Errorf("the simulated hosts stopped")
	}
	_, err = fmt.Sscanf(p.out.Text(), "stats %d %d %d %d", &sessions, &logins, &bytes, &unknown)
	return
}

func (p *hostsProc) stop() {
	p.in.Close()
	_ = p.cmd.Wait()
}

// profiles are where a size's runs write their profiles ("": none).
type profiles struct{ cpu, mem string }

func (p profiles) forRun(run string) profiles {
	if p.cpu != "" {
		p.cpu += "." + run
	}
	if p.mem != "" {
		p.mem += "." + run
	}
	return p
}

// runSize is one size: the hosts, the first run, the no-op.
func runSize(n, managers, parallel int, prof profiles) error {
	dir, err := os.MkdirTemp("", "shoal-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	hp, err := startHosts(n, filepath.Join(dir, "hosts"))
	if err != nil {
		return err
	}
	defer hp.stop()
	st, err := store.New(filepath.Join(dir, "store"))
	if err != nil {
		return err
	}
	reg := drivers.NewRegistry(drivertest.NewWorld().Spec())
	spec, diags := cluster.LoadSource([]byte(simhost.ClusterFile(hp.eps, managers)), filepath.Join(dir, "sim.hcl"), clusterfile.Options{}, reg)
	if diags.HasErrors() {
		return diags
	}
	world := enginetest.NewWorld()
	for _, e := range hp.eps {
		enginetest.NewEngine(world, e.Name, e.Addr)
	}
	m := machine.NewManager(st, reg)
	m.OpenEngine = func(mach *machine.Machine) bootstrap.Engine { return world.Engine(mach.Name) }
	conv := &cluster.Converger{Machines: m, Parallel: parallel}
	for _, run := range []string{"first", "no-op"} {
		if err := measure(n, run, conv, spec, hp, prof.forRun(run)); err != nil {
			return err
		}
	}
	return nil
}

// measure runs cluster up once and prints its line.
func measure(n int, run string, conv *cluster.Converger, spec *cluster.Spec, hp *hostsProc, prof profiles) error {
	cpuprofile := prof.cpu
	runtime.GC()
	s0, _, b0, _, err := hp.stats()
	if err != nil {
		return err
	}
	smp := startSampler(prof.mem)
	ru0 := rusage()
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	res, err := conv.Up(ctx, spec)
	cancel()
	wall := time.Since(start)
	if cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	ru1 := rusage()
	peak := smp.stop()
	if err != nil {
		return fmt.Errorf("%s run: %w", run, err)
	}
	s1, _, b1, unknown, err := hp.stats()
	if err != nil {
		return err
	}
	if unknown > 0 {
		return fmt.Errorf("%s run: the simulated hosts met %d commands they do not know", run, unknown)
	}
	if run == "no-op" && res.Changed {
		return fmt.Errorf("the no-op run changed something")
	}
	cpu := cpuTime(ru1) - cpuTime(ru0)
	fmt.Printf("%-5d %-6s %-9s %-8s %-9s %-9s %-10s %-14s %-13s %-11d %d\n", n, run,
		wall.Round(10*time.Millisecond), cpu.Round(10*time.Millisecond), (cpu / time.Duration(n)).Round(10*time.Microsecond),
		mib(peak.rss), mib(peak.heap),
		fmt.Sprintf("%.1f (%.1f)", float64(res.Sessions)/float64(n), float64(s1-s0)/float64(n)),
		fmt.Sprintf("%.1f", float64(b1-b0)/1024/float64(n)), peak.goroutines, peak.fds)
	return nil
}

func mib(b uint64) string { return fmt.Sprintf("%d MiB", b>>20) }

func rusage() syscall.Rusage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru
}

func cpuTime(ru syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peaks are the sampler's maxima.
type peaks struct {
	rss, heap       uint64
	goroutines, fds int
}

// sampler reads, every 100 ms (at 1,000 hosts a read of /proc/self/fd
// costs a millisecond), the process's goroutines, open files, RSS
// and live Go heap objects, and keeps the peaks.
type sampler struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	p     peaks
	// memprofile, when set, gets a heap profile whenever the heap reaches
	// a new peak (at most once a second).
	memprofile string
	lastProf   time.Time
}

func startSampler(memprofile string) *sampler {
	s := &sampler{stopc: make(chan struct{}), memprofile: memprofile}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stopc:
				s.sample()
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) stop() peaks {
	close(s.stopc)
	s.wg.Wait()
	return s.p
}

func (s *sampler) sample() {
	s.p.goroutines = max(s.p.goroutines, runtime.NumGoroutine())
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.p.fds = max(s.p.fds, len(ents)-1) // less ReadDir's own
	}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			s.p.rss = max(s.p.rss, pages*uint64(os.Getpagesize()))
		}
	}
	// runtime/metrics, unlike ReadMemStats, does not stop the world.
	m := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(m)
	if m[0].Value.Kind() == metrics.KindUint64 && m[0].Value.Uint64() > s.p.heap {
		s.p.heap = m[0].Value.Uint64()
		if s.memprofile != "" && time.Since(s.lastProf) > time.Second {
			s.lastProf = time.Now()
			if f, err := os.Create(s.memprofile); err == nil {
				_ = pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}
	}
}
