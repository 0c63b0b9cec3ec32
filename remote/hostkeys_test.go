package remote

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

const fixture = "testdata/known_hosts"

// fixtureKeys returns the public keys of testdata/known_hosts by line number.
func fixtureKeys(t *testing.T) map[int]ssh.PublicKey {
	t.Helper()
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[int]ssh.PublicKey{}
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		_, _, key, _, _, err := ssh.ParseKnownHosts([]byte(line))
		if err != nil {
			t.Fatalf("%s:%d: %v", fixture, i+1, err)
		}
		keys[i+1] = key
	}
	return keys
}

// copyFixture copies the fixture into a temp dir, for tests that append to it.
func copyFixture(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "known_hosts", string(data))
}

func TestHostKeyAlgorithms_FromKnownHosts(t *testing.T) {
	db, err := loadKnownHosts(nil, fixture, "", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	rsa := []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	for _, tc := range []struct {
		name, hostport string
		wantFirst      []string // nil: unknown host, library default
	}{
		{name: "non-standard port", hostport: "127.0.0.1:2201", wantFirst: []string{ssh.KeyAlgoED25519}},
		{name: "rsa", hostport: "web1.example.com:22", wantFirst: rsa},
		{name: "hashed", hostport: "10.0.0.5:2222", wantFirst: []string{ssh.KeyAlgoECDSA256}},
		{name: "two types", hostport: "multi.example.com:22", wantFirst: append([]string{ssh.KeyAlgoED25519}, rsa...)},
		{name: "same ip other port", hostport: "127.0.0.1:22"},
		{name: "unknown", hostport: "nowhere.example.com:22"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			known, err := db.knownKeys(tc.hostport)
			if err != nil {
				t.Fatal(err)
			}
			got := hostKeyAlgorithms(known)
			if tc.wantFirst == nil {
				if got != nil {
					t.Fatalf("algorithms = %q, want nil", got)
				}
				return
			}
			if len(got) < len(tc.wantFirst) || !slices.Equal(got[:len(tc.wantFirst)], tc.wantFirst) {
				t.Fatalf("algorithms = %q, want them to start with %q", got, tc.wantFirst)
			}
			// Every other algorithm follows, so that a host that lost the
			// known key type still shows a key and is refused as changed.
			for _, a := range ssh.SupportedAlgorithms().HostKeys {
				if !slices.Contains(got, a) {
					t.Errorf("algorithms lack %s", a)
				}
			}
		})
	}
}

func TestHostKeyChecker_Callback(t *testing.T) {
	keys := fixtureKeys(t)
	fresh := otherKey(t)
	data := []byte("[192.0.2.7]:22 " + string(ssh.MarshalAuthorizedKey(keys[2])))
	for _, tc := range []struct {
		name, hostport string
		key            ssh.PublicKey
		acceptNew      bool
		withData       bool
		wantErr        string // "" accepted; else HostKeyError text
		wantAppended   bool
	}{
		{name: "known", hostport: "127.0.0.1:2201", key: keys[2]},
		{name: "known second type", hostport: "multi.example.com:22", key: keys[6]},
		{name: "hashed", hostport: "10.0.0.5:2222", key: keys[4]},
		{name: "unknown", hostport: "192.0.2.1:22", key: fresh, wantErr: "host key unknown"},
		{name: "changed", hostport: "127.0.0.1:2201", key: fresh, wantErr: "known_hosts:2"},
		{name: "revoked", hostport: "192.0.2.1:22", key: keys[7], wantErr: "REVOKED"},
		{name: "unknown accepted", hostport: "192.0.2.1:22", key: fresh, acceptNew: true, wantAppended: true},
		{name: "changed never accepted", hostport: "web1.example.com:22", key: fresh, acceptNew: true, wantErr: "CHANGED"},
		{name: "known from data", hostport: "192.0.2.7:22", key: keys[2], withData: true},
		{name: "changed from data", hostport: "192.0.2.7:22", key: fresh, withData: true, acceptNew: true, wantErr: knownHostsDataLabel + ":1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := copyFixture(t)
			before, _ := os.ReadFile(file)
			var dataCB ssh.HostKeyCallback
			var dataFile string
			if tc.withData {
				var err error
				if dataCB, dataFile, err = parseKnownHostsData(data); err != nil {
					t.Fatal(err)
				}
			}
			db, err := loadKnownHosts(nil, file, "", dataCB, dataFile)
			if err != nil {
				t.Fatal(err)
			}
			h := &hostKeyChecker{host: "h", hostport: tc.hostport, db: db, acceptNew: tc.acceptNew,
				appendMu: &sync.Mutex{}, logf: t.Logf}
			err = h.callback(tc.hostport, nil, tc.key)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("callback: %v", err)
				}
				if h.fingerprint != ssh.FingerprintSHA256(tc.key) {
					t.Errorf("fingerprint %q", h.fingerprint)
				}
			} else {
				var hk *HostKeyError
				if !errors.As(err, &hk) || !strings.Contains(err.Error(), tc.wantErr) ||
					!strings.Contains(err.Error(), ssh.FingerprintSHA256(tc.key)) {
					t.Fatalf("callback = %v, want HostKeyError with %q and the fingerprint", err, tc.wantErr)
				}
			}
			after, _ := os.ReadFile(file)
			appended := strings.TrimPrefix(string(after), string(before))
			if !tc.wantAppended {
				if string(after) != string(before) {
					t.Fatalf("known_hosts changed: %q", appended)
				}
				return
			}
			if want := knownHostsLine(tc.hostport, tc.key); appended != want {
				t.Fatalf("appended %q, want %q", appended, want)
			}
			db, err = loadKnownHosts(nil, file, "", nil, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := db.check(tc.hostport, tc.key); err != nil {
				t.Errorf("appended key not trusted: %v", err)
			}
		})
	}
}

func TestLoadKnownHosts_MissingFileIsEmpty(t *testing.T) {
	db, err := loadKnownHosts(nil, filepath.Join(t.TempDir(), "none"), "", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if known, err := db.knownKeys("127.0.0.1:2201"); err != nil || len(known) != 0 {
		t.Fatalf("knownKeys = %v, %v", known, err)
	}
}

func TestParseKnownHostsData_BadLineNamesLabel(t *testing.T) {
	_, _, err := parseKnownHostsData([]byte("host ssh-ed25519 not-base64!\n"))
	if err == nil || !strings.Contains(err.Error(), knownHostsDataLabel+":1") {
		t.Fatalf("err = %v, want it to name %s:1", err, knownHostsDataLabel)
	}
}

func TestKnownHostsCache_ParsesOnceUntilTheFileChanges(t *testing.T) {
	file := copyFixture(t)
	fresh := otherKey(t)
	var cache knownHostsCache
	load := func() *knownHosts {
		t.Helper()
		db, err := loadKnownHosts(&cache, file, "", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	first, second := load(), load()
	if fmt.Sprintf("%p", first.callbacks[0]) != fmt.Sprintf("%p", second.callbacks[0]) {
		t.Fatal("an unchanged file was parsed again")
	}
	h := &hostKeyChecker{host: "h", hostport: "192.0.2.1:22", db: second, acceptNew: true, appendMu: &sync.Mutex{}, logf: t.Logf}
	if err := h.callback(h.hostport, nil, fresh); err != nil {
		t.Fatalf("accept-new: %v", err)
	}
	if err := load().check(h.hostport, fresh); err != nil {
		t.Fatalf("the key accept-new appended is not trusted on the next load: %v", err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if db := load(); len(db.callbacks) != 0 {
		t.Fatalf("a removed file still gives %d callback(s)", len(db.callbacks))
	}
}
