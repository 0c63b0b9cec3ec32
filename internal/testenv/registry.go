package testenv

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary is where Debian's docker-registry package installs the registry (distribution 2.x).
const RegistryBinary = "/usr/bin/docker-registry"

// registryStartTimeout bounds how long StartRegistry waits for the registry to answer.
const registryStartTimeout = 10 * time.Second

// RegistryOptions describe a registry to start for a test.
type RegistryOptions struct {
	// Dir holds the configuration, the htpasswd file, the log and the storage. It must exist; tests pass
	// t.TempDir().
	Dir string
	// Username and Password protect the registry with HTTP basic auth (bcrypt htpasswd) when Username is set.
	Username, Password string
	// Notify, when URL is set, makes the registry send its notifications (manifest and blob pushes and
	// pulls) to that endpoint.
	Notify RegistryNotify
}

// RegistryNotify is a notifications endpoint of the registry's configuration.
type RegistryNotify struct {
	// URL receives the registry's event envelopes (POST, application/vnd.docker.distribution.events.v1+json).
	URL string
	// Headers are sent with every notification, such as Authorization: Bearer <secret>.
	Headers map[string]string
}

// Registry is a real docker registry (github.com/distribution/distribution) listening on 127.0.0.1 over
// plain HTTP, which Docker Engine accepts without TLS for loopback addresses. Stop it when done.
type Registry struct {
	// Addr is "127.0.0.1:PORT": the server to log in to and the prefix of image names.
	Addr string
	// Dir, Config and LogFile are the registry's directory, configuration and log.
	Dir, Config, LogFile string
	// Username and Password are the credentials it accepts ("" when it is open).
	Username, Password string

	notify   RegistryNotify
	spawn    *spawner
	proc     *process
	stopOnce sync.Once
	stopErr  error
}

// StartRegistry writes a configuration with filesystem storage under opts.Dir, starts the registry on a
// free loopback port and returns once it answers /v2/. A missing binary is reported as ErrMissingTool.
func StartRegistry(ctx context.Context, opts RegistryOptions) (*Registry, error) {
	if _, err := os.Stat(RegistryBinary); err != nil {
		return nil, fmt.Errorf("testenv: %s (apt-get install docker-registry): %w", RegistryBinary, ErrMissingTool)
	}
	if opts.Dir == "" {
		return nil, errors.New("testenv: registry: Dir is required")
	}
	r := &Registry{
		Dir:      opts.Dir,
		Config:   filepath.Join(opts.Dir, "config.yml"),
		LogFile:  filepath.Join(opts.Dir, "registry.log"),
		Username: opts.Username,
		Password: opts.Password,
		spawn:    newSpawner(),
		notify:   opts.Notify,
	}
	htpasswd := ""
	if opts.Username != "" {
		if strings.ContainsAny(opts.Username, ":\r\n") {
			return nil, errors.New("testenv: registry: username must not contain ':' or newlines")
		}
		// The lowest cost keeps every authenticated request fast; these are throwaway credentials.
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			return nil, fmt.Errorf("testenv: registry: %w", err)
		}
		htpasswd = filepath.Join(opts.Dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(opts.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("testenv: registry: %w", err)
		}
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort("127.0.0.1")
		if err != nil {
			return nil, fmt.Errorf("testenv: registry: %w", err)
		}
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		err = r.start(ctx, htpasswd)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, errAddrInUse) || attempt == 5 {
			r.spawn.close()
			return nil, err
		}
	}
}

// registryConfig renders the registry's config.yml.
func (r *Registry) registryConfig(htpasswd string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n")
	fmt.Fprintf(&b, "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n", strconv.Quote(filepath.Join(r.Dir, "data")))
	fmt.Fprintf(&b, "http:\n  addr: %s\n", strconv.Quote(r.Addr))
	if htpasswd != "" {
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: skiff-testenv\n    path: %s\n", strconv.Quote(htpasswd))
	}
	if n := r.notify; n.URL != "" {
		fmt.Fprintf(&b, "notifications:\n  endpoints:\n    - name: skiff-testenv\n      url: %s\n", strconv.Quote(n.URL))
		fmt.Fprintf(&b, "      timeout: 5s\n      threshold: 3\n      backoff: 1s\n")
		if len(n.Headers) > 0 {
			b.WriteString("      headers:\n")
			for _, k := range slices.Sorted(maps.Keys(n.Headers)) {
				fmt.Fprintf(&b, "        %s: [%s]\n", strconv.Quote(k), strconv.Quote(n.Headers[k]))
			}
		}
	}
	return b.String()
}

func (r *Registry) start(ctx context.Context, htpasswd string) error {
	if err := os.WriteFile(r.Config, []byte(r.registryConfig(htpasswd)), 0o600); err != nil {
		return fmt.Errorf("testenv: registry: %w", err)
	}
	log, err := os.OpenFile(r.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("testenv: registry: %w", err)
	}
	defer log.Close()
	offset := fileSize(r.LogFile)
	cmd := exec.Command(RegistryBinary, "serve", r.Config)
	cmd.Stdout, cmd.Stderr = log, log
	p, err := r.spawn.start(cmd)
	if err != nil {
		return fmt.Errorf("testenv: start registry: %w", err)
	}
	if err := r.waitReady(ctx, p, offset); err != nil {
		return errors.Join(err, p.kill(""))
	}
	r.proc = p
	return nil
}

// waitReady polls GET /v2/ until the registry answers (200, or 401 when it wants credentials).
func (r *Registry) waitReady(ctx context.Context, p *process, offset int64) error {
	ctx, cancel := context.WithTimeout(ctx, registryStartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Addr+"/v2/", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case <-p.done:
			log := readFrom(r.LogFile, offset)
			err := fmt.Errorf("testenv: registry on %s exited: %v; log:\n%s", r.Addr, p.err, tail(log, 20))
			if strings.Contains(string(log), "address already in use") {
				err = fmt.Errorf("%w: %w", errAddrInUse, err)
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("testenv: registry on %s not answering: %w; log:\n%s", r.Addr, ctx.Err(), tail(readFrom(r.LogFile, offset), 20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Repo returns the name of repository name in this registry ("127.0.0.1:PORT/name").
func (r *Registry) Repo(name string) string { return r.Addr + "/" + name }

// Log returns the registry's log so far, for failure messages.
func (r *Registry) Log() string { return string(readFrom(r.LogFile, 0)) }

// Stop kills the registry. Its storage stays in Dir, which the test's TempDir removes. Stopping twice is
// harmless.
func (r *Registry) Stop() error {
	r.stopOnce.Do(func() {
		if r.proc != nil {
			r.stopErr = r.proc.kill("")
		}
		r.spawn.close()
	})
	return r.stopErr
}
