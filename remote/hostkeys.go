package remote

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// knownHostsDataLabel names KnownHostsData in messages, where a file name would be.
const knownHostsDataLabel = "<known hosts data>"

// Where host keys are looked up when a target names no known_hosts file, as OpenSSH does.
const (
	// DefaultKnownHosts is the user's file, read and (with accept-new) written.
	DefaultKnownHosts = "~/.ssh/known_hosts"
	// GlobalKnownHosts is the system-wide file, always read, never written.
	GlobalKnownHosts = "/etc/ssh/ssh_known_hosts"
)

// knownHosts is the host key database for one handshake: the target's
// known_hosts file (as it is now, since accept-new may have appended to it),
// the global file and the pool's KnownHostsData.
type knownHosts struct {
	file      string
	callbacks []ssh.HostKeyCallback
	labels    map[string]string // temporary file name -> label
}

// loadKnownHosts reads file, the one accept-new writes to, and the global
// file (a missing file counts as empty), through cache when it is not nil,
// and adds the already parsed data callback, if any.
func loadKnownHosts(cache *knownHostsCache, file, global string, data ssh.HostKeyCallback, dataFile string) (*knownHosts, error) {
	kh := &knownHosts{file: file, labels: map[string]string{dataFile: knownHostsDataLabel}}
	for _, f := range []string{file, global} {
		if f == "" {
			continue
		}
		cb, err := cache.load(f)
		if err != nil {
			return nil, fmt.Errorf("reading known hosts: %w", err)
		}
		if cb != nil {
			kh.callbacks = append(kh.callbacks, cb)
		}
	}
	if data != nil {
		kh.callbacks = append(kh.callbacks, data)
	}
	return kh, nil
}

// knownHostsCache keeps each known_hosts file parsed for as long as its size and modification time stay the
// same, so that a pool dialing many hosts parses a file once rather than once per host, and its connections
// share one copy (x/crypto keeps each connection's host key callback, for re-keys): 200 hosts in one file
// would otherwise cost 200 × 200 parsed entries. A file that accept-new appended to is parsed again.
type knownHostsCache struct {
	mu    sync.Mutex
	files map[string]cachedKnownHosts
}

type cachedKnownHosts struct {
	size int64
	mod  time.Time
	cb   ssh.HostKeyCallback
}

// load returns the callback of file, or nil when it does not exist. A nil cache parses every time.
func (c *knownHostsCache) load(file string) (ssh.HostKeyCallback, error) {
	fi, err := os.Stat(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if c == nil {
		return knownhosts.New(file)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.files[file]; ok && e.size == fi.Size() && e.mod.Equal(fi.ModTime()) {
		return e.cb, nil
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, err
	}
	if c.files == nil {
		c.files = map[string]cachedKnownHosts{}
	}
	c.files[file] = cachedKnownHosts{size: fi.Size(), mod: fi.ModTime(), cb: cb}
	return cb, nil
}

// parseKnownHostsData turns known_hosts content given whole into a callback.
// knownhosts only reads files, so the data goes through a temporary file that
// is removed as soon as it has been parsed; its name is returned so that
// messages can show a label instead.
func parseKnownHostsData(data []byte) (ssh.HostKeyCallback, string, error) {
	f, err := os.CreateTemp("", "skiff-known-hosts-*")
	if err != nil {
		return nil, "", fmt.Errorf("known hosts data: %w", err)
	}
	name := f.Name()
	defer os.Remove(name)
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, "", fmt.Errorf("known hosts data: %w", werr)
	}
	cb, err := knownhosts.New(name)
	if err != nil {
		return nil, "", fmt.Errorf("known hosts data: %s", strings.ReplaceAll(err.Error(), name, knownHostsDataLabel))
	}
	return cb, name, nil
}

// check runs key through every database. It returns *knownhosts.RevokedError
// when any of them revokes it (a revocation wins over a database that trusts
// the key), nil when one holds it, and otherwise a *knownhosts.KeyError
// listing every key known for hostport (empty: unknown).
func (kh *knownHosts) check(hostport string, key ssh.PublicKey) error {
	merged := &knownhosts.KeyError{}
	remote := &net.TCPAddr{IP: net.IPv4zero}
	trusted := false
	for _, cb := range kh.callbacks {
		err := cb(hostport, remote, key)
		var keyErr *knownhosts.KeyError
		var revoked *knownhosts.RevokedError
		switch {
		case err == nil:
			trusted = true
		case errors.As(err, &revoked):
			return err
		case errors.As(err, &keyErr):
			merged.Want = append(merged.Want, keyErr.Want...)
		default:
			return err
		}
	}
	if trusted {
		return nil
	}
	return merged
}

// knownKeys lists the keys recorded for hostport, found by checking a freshly
// generated key that cannot be in any database.
func (kh *knownHosts) knownKeys(hostport string) ([]knownhosts.KnownKey, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var keyErr *knownhosts.KeyError
	if err := kh.check(hostport, probe); errors.As(err, &keyErr) {
		return keyErr.Want, nil
	}
	return nil, nil
}

// where formats a known key's location, with the data label for KnownHostsData.
func (kh *knownHosts) where(k knownhosts.KnownKey) string {
	name := k.Filename
	if label, ok := kh.labels[name]; ok {
		name = label
	}
	return name + ":" + strconv.Itoa(k.Line)
}

// hostKeyAlgorithms returns the algorithms to offer for a host whose known
// keys are known: their algorithms first, so that a host holding several key
// types presents the one we can verify (x/crypto would otherwise pick its own
// favourite and report a mismatch), then every other supported algorithm, so
// that a host which no longer has the known type still shows its key and is
// refused as CHANGED. It returns nil (the library default) when none are known.
func hostKeyAlgorithms(known []knownhosts.KnownKey) []string {
	if len(known) == 0 {
		return nil
	}
	var algos []string
	add := func(a ...string) {
		for _, x := range a {
			if !slices.Contains(algos, x) {
				algos = append(algos, x)
			}
		}
	}
	for _, k := range known {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	add(ssh.SupportedAlgorithms().HostKeys...)
	return algos
}

// hostKeyChecker verifies the key one target presents during its handshake.
type hostKeyChecker struct {
	host, hostport string
	db             *knownHosts
	acceptNew      bool
	appendMu       *sync.Mutex // serialises appends to known_hosts files across the pool
	logf           func(format string, args ...any)

	fingerprint string // set when the key was accepted
}

// callback is the ssh.HostKeyCallback for the handshake.
func (h *hostKeyChecker) callback(_ string, _ net.Addr, key ssh.PublicKey) error {
	fp := ssh.FingerprintSHA256(key)
	err := h.db.check(h.hostport, key)
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case err == nil:
		h.fingerprint = fp
		return nil
	case errors.As(err, &revoked):
		return &HostKeyError{Host: h.host, Addr: h.hostport, KeyType: key.Type(), Fingerprint: fp,
			KnownHostsFile: h.db.where(revoked.Revoked), Revoked: true}
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		return &HostKeyError{Host: h.host, Addr: h.hostport, KeyType: key.Type(), Fingerprint: fp,
			KnownHostsFile: h.db.where(keyErr.Want[0]), Changed: true}
	case errors.As(err, &keyErr):
		if !h.acceptNew || h.db.file == "" {
			return &HostKeyError{Host: h.host, Addr: h.hostport, KeyType: key.Type(), Fingerprint: fp,
				KnownHostsFile: h.db.file}
		}
		if err := h.appendKey(key); err != nil {
			return fmt.Errorf("accepting new host key %s %s: %w", key.Type(), fp, err)
		}
		h.logf("host %s (%s): added new host key %s %s to %s", h.host, h.hostport, key.Type(), fp, h.db.file)
		h.fingerprint = fp
		return nil
	default:
		return err
	}
}

// appendKey records key for the host at the end of the known_hosts file,
// creating the file (and its directory) when missing.
func (h *hostKeyChecker) appendKey(key ssh.PublicKey) error {
	h.appendMu.Lock()
	defer h.appendMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(h.db.file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(h.db.file, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	line := knownhosts.Line([]string{h.hostport}, key) + "\n"
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = "\n" + line
		}
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
