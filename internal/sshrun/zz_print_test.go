package sshrun

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestZZPrint(t *testing.T) {
	keyA, keyB := newEd25519Signer(t), newEd25519Signer(t)
	srv, cfg := setup(t, serverOpts{hostKeys: []ssh.Signer{keyA}})
	dial(t, cfg).Close()
	srv.Close()
	newTestServer(t, serverOpts{addr: srv.addr, hostKeys: []ssh.Signer{keyB}, authorized: mustPub(t, cfg.KeyPath)})
	_, err := Dial(context.Background(), cfg)
	fmt.Println(err, "\n")
	cfg.HostKeyFingerprint = Fingerprint(keyA.PublicKey())
	os.Remove(cfg.KnownHostsPath)
	_, err = Dial(context.Background(), cfg)
	fmt.Println(err, "\n")
	cfg.HostKeyFingerprint = ""
	cfg.KeyPath, _ = newClientKey(t)
	_, err = Dial(context.Background(), cfg)
	fmt.Println(err, "\n")
	cfg.Port = 1
	ctx, c := context.WithTimeout(context.Background(), time.Second)
	defer c()
	_, err = Dial(ctx, cfg)
	fmt.Println(err, "\n")
	fmt.Println((&SudoError{Host: "h1", User: "ubuntu.x", Err: &RunError{}}).Error())
	fmt.Println((&RunError{Host: "h1", Cmd: "apt-get install -y docker", ExitCode: 100, Stderr: "E: a\nE: b"}).Error())
}
