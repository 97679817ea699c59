package dmimport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/crypto/ssh"
)

// scanHostKey reads the host key the SSH server at addr offers, without
// logging in.
func scanHostKey(ctx context.Context, addr string) (ssh.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	var key ssh.PublicKey
	errSeen := errors.New("host key seen")
	_, _, _, err = ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User: "shoal-import",
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errSeen
		},
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA},
	})
	if key != nil {
		return key, nil
	}
	return nil, err
}

// ScanHostKeys reads, in parallel, the host key of each importable
// machine's SSH server into its plan (each within scanHostKey's bound); a
// host that does not answer is not importable.
func ScanHostKeys(ctx context.Context, plans []Plan) {
	var wg sync.WaitGroup
	for i := range plans {
		p := &plans[i]
		if p.Driver == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
			key, err := scanHostKey(ctx, addr)
			if err != nil {
				p.Driver, p.Reason = "", fmt.Sprintf("its SSH server at %s does not answer: %v", addr, err)
				return
			}
			p.Fingerprint = ssh.FingerprintSHA256(key)
		}()
	}
	wg.Wait()
}

// Importable counts the plans that import a machine.
func Importable(plans []Plan) int {
	n := 0
	for _, p := range plans {
		if p.Driver != "" {
			n++
		}
	}
	return n
}

// PrintPlans shows each machine: how it is imported and its host key, or
// why it is not; and the keys copied only once confirmed.
func PrintPlans(w io.Writer, plans []Plan) {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDOCKER-MACHINE DRIVER\tIMPORT AS\tSSH\tHOST KEY / REASON")
	for _, p := range plans {
		if p.Driver == "" {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\tnot importable: %s\n", p.Name, p.DriverName, p.Reason)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s@%s\t%s\n", p.Name, p.DriverName, p.Driver, p.User, net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), p.Fingerprint)
	}
	tw.Flush()
	for _, p := range plans {
		if p.Driver != "" && p.KeyOutside {
			fmt.Fprintf(w, "%s: its config.json names the SSH key %s, outside its docker-machine folder: it is copied into shoal's store only once you confirm\n", p.Name, p.KeyPath)
		}
	}
}

// KeysQuestion adds the keys outside their machine's folder to the
// question that confirms an import.
func KeysQuestion(plans []Plan) string {
	for _, p := range plans {
		if p.Driver != "" && p.KeyOutside {
			return " and copy the SSH keys named outside their folders"
		}
	}
	return ""
}
