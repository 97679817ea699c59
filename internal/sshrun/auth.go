package sshrun

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// AuthError means the server refused every key offered. It is never retried.
type AuthError struct {
	User      string
	Host      string
	Port      int
	KeyPath   string // "" when no key file was offered
	Agent     bool   // agent keys were offered
	AgentKeys int
	AgentErr  error // why the agent could not be used, if it could not
	Password  bool  // a password was offered too
	Err       error
}

func (e *AuthError) Error() string {
	var via []string
	if e.KeyPath != "" {
		via = append(via, "key "+e.KeyPath)
	}
	switch {
	case e.AgentErr != nil:
		via = append(via, "agent unusable: "+e.AgentErr.Error())
	case e.Agent:
		via = append(via, fmt.Sprintf("agent, %d keys", e.AgentKeys))
	}
	if e.Password {
		via = append(via, "password")
		return fmt.Sprintf("ssh: user %s on %s: authentication failed (%s): %v; is the password right, and does the host's sshd allow PasswordAuthentication or KbdInteractiveAuthentication?",
			e.User, net.JoinHostPort(e.Host, strconv.Itoa(e.Port)), strings.Join(via, " / "), e.Err)
	}
	return fmt.Sprintf("ssh: user %s on %s: authentication failed (%s): %v; is the public key in ~%s/.ssh/authorized_keys?",
		e.User, net.JoinHostPort(e.Host, strconv.Itoa(e.Port)), strings.Join(via, " / "), e.Err, e.User)
}

func (e *AuthError) Unwrap() error { return e.Err }

// auth holds the credentials of one connection attempt; the agent socket
// must stay open until the handshake has signed with it.
type auth struct {
	methods   []ssh.AuthMethod
	keyPath   string
	agent     bool
	agentKeys int
	agentErr  error
	agentConn net.Conn
	password  bool
	passUsed  *atomic.Bool // the password was asked for and the login then succeeded
}

func newAuth(cfg Config) (*auth, error) {
	a := &auth{}
	var signers []ssh.Signer
	if cfg.KeyPath != "" {
		s, err := keyFileSigner(cfg.KeyPath)
		if err != nil {
			return nil, err
		}
		signers = append(signers, s)
		a.keyPath = cfg.KeyPath
	}
	if cfg.UseAgent {
		ss, err := a.useAgent(cfg, len(signers) > 0)
		if err != nil {
			return nil, err
		}
		signers = append(signers, ss...)
	}
	signers = append(signers, extraSigners(cfg.ExtraKeyPaths)...)
	if len(signers) == 0 && cfg.Password == nil {
		a.close()
		return nil, errors.New("ssh: the agent at $SSH_AUTH_SOCK holds no keys and no KeyPath is set")
	}
	if len(signers) > 0 {
		// One method with all keys: x/crypto skips a second "publickey" method.
		a.methods = []ssh.AuthMethod{ssh.PublicKeys(signers...)}
	}
	a.passUsed = &atomic.Bool{}
	if cfg.Password != nil {
		a.password = true
		a.methods = append(a.methods, passwordMethods(cfg.Password, a.passUsed)...)
	}
	return a, nil
}

// keyFileSigner reads the private key at path; one with a passphrase is
// refused with a hint.
func keyFileSigner(path string) (ssh.Signer, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ssh: private key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(pemBytes)
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		return nil, fmt.Errorf("ssh: private key %s is protected by a passphrase; load it into ssh-agent and use the agent instead", path)
	}
	if err != nil {
		return nil, fmt.Errorf("ssh: private key %s: %w", path, err)
	}
	return s, nil
}

// useAgent returns the agent's keys. An agent that fails is an error only
// when nothing else can log in (haveKey: the key file); else it is noted
// for the auth error.
func (a *auth) useAgent(cfg Config, haveKey bool) ([]ssh.Signer, error) {
	ss, conn, err := agentSigners(cfg.AgentSocket)
	if err == nil {
		a.agent, a.agentConn, a.agentKeys = true, conn, len(ss)
		return ss, nil
	}
	if !haveKey && cfg.Password == nil && len(cfg.ExtraKeyPaths) == 0 {
		return nil, err
	}
	a.agentErr = err // the key file may still do
	return nil, nil
}

func agentSigners(sock string) ([]ssh.Signer, net.Conn, error) {
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock == "" {
		return nil, nil, errors.New("ssh: UseAgent is set but $SSH_AUTH_SOCK is empty (no ssh-agent running?)")
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, nil, fmt.Errorf("ssh: agent at $SSH_AUTH_SOCK: %w", err)
	}
	ss, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("ssh: agent at $SSH_AUTH_SOCK: %w", err)
	}
	return ss, conn, nil
}

func (a *auth) close() {
	if a.agentConn != nil {
		a.agentConn.Close()
	}
}

func (a *auth) error(cfg Config, err error) *AuthError {
	return &AuthError{
		User: cfg.User, Host: cfg.Host, Port: cfg.DialPort(),
		KeyPath: a.keyPath, Agent: a.agent, AgentKeys: a.agentKeys, AgentErr: a.agentErr,
		Password: a.password, Err: err,
	}
}

// GenerateKey creates an ed25519 key pair: the private key in OpenSSH PEM
// (for a 0600 file) and the public key in authorized_keys format, without a
// trailing newline or comment.
func GenerateKey() (privatePEM []byte, authorizedKey string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, "", err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, "", err
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))), nil
}
