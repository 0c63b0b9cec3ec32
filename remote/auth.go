package remote

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// keyring loads and caches the pool's private keys: Options.KeyPEM and the
// targets' identity files. Agent keys are asked for at every handshake.
type keyring struct {
	opts Options

	mu    sync.Mutex
	files map[string]ssh.Signer // parsed identity files, by path
	pem   ssh.Signer
	pemOK bool
}

// authAttempt gathers the signers for one handshake and why some keys were
// left out, so that an authentication failure can say what was tried.
type authAttempt struct {
	signers []ssh.Signer
	notes   []string
	agent   net.Conn
}

// close releases the agent connection, if one was opened.
func (a *authAttempt) close() {
	if a.agent != nil {
		a.agent.Close()
	}
}

// describe summarises the keys offered, for an "auth" ConnectError.
func (a *authAttempt) describe() string {
	msg := fmt.Sprintf("offered %d key(s)", len(a.signers))
	if len(a.notes) > 0 {
		msg += " (" + strings.Join(a.notes, "; ") + ")"
	}
	return msg
}

// collect returns the signers to offer to target t: KeyPEM first, then the
// identity files, then the agent's keys, without duplicates. Explicit keys come
// first so that sshd's MaxAuthTries is not spent on unrelated agent keys.
func (k *keyring) collect(t *Target) *authAttempt {
	a := &authAttempt{}
	seen := map[string]bool{}
	add := func(s ssh.Signer) {
		id := string(s.PublicKey().Marshal())
		if !seen[id] {
			seen[id] = true
			a.signers = append(a.signers, s)
		}
	}
	if s, err := k.pemSigner(); err != nil {
		a.notes = append(a.notes, "key from options: "+err.Error())
	} else if s != nil {
		add(s)
	}
	for _, path := range t.IdentityFiles {
		s, err := k.fileSigner(expandHome(path))
		if err != nil {
			a.notes = append(a.notes, err.Error())
			continue
		}
		add(s)
	}
	if k.opts.AgentSocket != "" {
		conn, err := net.Dial("unix", k.opts.AgentSocket)
		if err != nil {
			a.notes = append(a.notes, "agent unavailable: "+err.Error())
		} else {
			a.agent = conn
			signers, err := agent.NewClient(conn).Signers()
			if err != nil {
				a.notes = append(a.notes, "agent: "+err.Error())
			}
			for _, s := range signers {
				add(s)
			}
		}
	}
	return a
}

// pemSigner parses Options.KeyPEM once.
func (k *keyring) pemSigner() (ssh.Signer, error) {
	if len(k.opts.KeyPEM) == 0 {
		return nil, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.pemOK {
		s, err := parseKey(k.opts.KeyPEM, k.opts.Passphrase)
		if err != nil {
			return nil, err
		}
		k.pem, k.pemOK = s, true
	}
	return k.pem, nil
}

// fileSigner reads and parses an identity file once per pool.
func (k *keyring) fileSigner(path string) (ssh.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.files[path]; ok {
		return s, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("identity file %s: not found", path)
		}
		return nil, fmt.Errorf("identity file: %w", err)
	}
	s, err := parseKey(data, k.opts.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	if k.files == nil {
		k.files = map[string]ssh.Signer{}
	}
	k.files[path] = s
	return s, nil
}

// parseKey parses a private key, decrypting it with passphrase when it is encrypted.
// Errors never quote the key or the passphrase.
func parseKey(data, passphrase []byte) (ssh.Signer, error) {
	s, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if len(passphrase) == 0 {
			return nil, errors.New("key is encrypted and no passphrase was given")
		}
		s, err = ssh.ParsePrivateKeyWithPassphrase(data, passphrase)
		if err != nil {
			return nil, errors.New("cannot decrypt key (wrong passphrase?)")
		}
	}
	if err != nil {
		return nil, errors.New("not a valid private key")
	}
	return s, nil
}

// expandHome replaces a leading "~/" with the user's home directory.
func expandHome(path string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return path
}
