package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// The Docker helpers drive the test machine's real Docker Engine. Test hosts share the machine, so the
// engine a host's login user reaches over SSH is the very engine the tests build images with: tests must
// give their compose projects, ports and image repositories unique names, and remove what they create.

// BusyboxBinary is the static busybox (Debian busybox-static) that test images are built from: no image
// can be pulled from the internet, so every image is a tarball of busybox and a few files.
const BusyboxBinary = "/bin/busybox"

// RequireDocker skips the test (or fails it under CI=true) unless the docker CLI is installed, the engine
// answers, and the static busybox that test images are made of is there.
func RequireDocker(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		SkipOrFail(tb, "docker CLI not installed")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		SkipOrFail(tb, fmt.Sprintf("docker engine not usable: %v: %s", err, strings.TrimSpace(string(out))))
		return
	}
	if _, err := os.Stat(BusyboxBinary); err != nil {
		SkipOrFail(tb, BusyboxBinary+" missing (apt-get install busybox-static)")
	}
}

// RequireCompose skips the test (or fails it under CI=true) unless the standalone docker-compose is
// installed.
func RequireCompose(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("docker-compose"); err != nil {
		SkipOrFail(tb, "docker-compose not installed")
	}
}

// AllowDocker lets the environment's login user use the Docker Engine. As root it adds the user to the
// docker group (once per machine; sshd applies it to every session that starts afterwards), which makes
// that throwaway account root-equivalent on the test machine, like a deploy user on a real docker host.
// Unprivileged, the login user is the current user, who must already be allowed.
func (e *Env) AllowDocker(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		return
	}
	g, err := user.LookupGroup("docker")
	if err != nil {
		SkipOrFail(tb, "no docker group on this machine: "+err.Error())
		return
	}
	u, err := user.Lookup(e.User)
	if err != nil {
		tb.Fatalf("testenv: look up %s: %v", e.User, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		gids, err := u.GroupIds()
		if err != nil {
			tb.Fatalf("testenv: groups of %s: %v", e.User, err)
		}
		for _, gid := range gids {
			if gid == g.Gid {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("testenv: could not add %s to the docker group: %v", e.User, err)
		}
		// Another test binary may hold the lock on /etc/group: retry like ensureTestUser.
		if err = runAdmin(context.Background(), "usermod", "--append", "--groups", "docker", e.User); err != nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// ImageSpec describes a test image: the static busybox as /bin/busybox and /bin/sh, plus Files, run as Cmd.
type ImageSpec struct {
	// Files maps absolute paths in the image to their content (mode 0644; directories are created).
	Files map[string]string
	// Cmd is the image's command, such as {"/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"}.
	Cmd []string
}

// BuildImage creates image ref on the local engine with `docker import` and returns its id.
func BuildImage(ctx context.Context, ref string, spec ImageSpec) (string, error) {
	data, err := imageTar(spec)
	if err != nil {
		return "", err
	}
	cmdJSON, err := json.Marshal(spec.Cmd)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "docker", "import", "--change", "CMD "+string(cmdJSON), "-", ref)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("testenv: docker import %s: %w: %s", ref, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// imageTar builds the root file system of an ImageSpec as a tar stream.
func imageTar(spec ImageSpec) ([]byte, error) {
	busybox, err := os.ReadFile(BusyboxBinary)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	mkdirs := func(p string) error {
		var parts []string
		for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
			parts = append(parts, d)
		}
		for i := len(parts) - 1; i >= 0; i-- {
			if d := parts[i]; !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755}); err != nil {
					return err
				}
			}
		}
		return nil
	}
	file := func(p string, mode int64, data []byte) error {
		if err := mkdirs(p); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: mode, Size: int64(len(data))}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := file("/bin/busybox", 0o755, busybox); err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "busybox", Mode: 0o777}); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(spec.Files))
	for name := range spec.Files {
		if !path.IsAbs(name) {
			return nil, fmt.Errorf("testenv: image file %q must be absolute", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := file(path.Clean(name), 0o644, []byte(spec.Files[name])); err != nil {
			return nil, err
		}
	}
	if err := mkdirs("/tmp/x"); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var pushDigestRE = regexp.MustCompile(`digest: (sha256:[0-9a-f]{64})`)

// Push pushes the local image ref (named in this registry) with the registry's credentials and returns its
// manifest digest. With removeLocal it then removes the local tag, so that a later pull really downloads.
func (r *Registry) Push(ctx context.Context, ref string, removeLocal bool) (string, error) {
	out, err := r.docker(ctx, "push", ref)
	if err != nil {
		return "", err
	}
	m := pushDigestRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("testenv: docker push %s: no digest in output:\n%s", ref, out)
	}
	if removeLocal {
		if out, err := exec.CommandContext(ctx, "docker", "rmi", ref).CombinedOutput(); err != nil {
			return "", fmt.Errorf("testenv: docker rmi %s: %w: %s", ref, err, strings.TrimSpace(string(out)))
		}
	}
	return string(m[1]), nil
}

// Pull pulls ref from this registry onto the local engine with the registry's credentials.
func (r *Registry) Pull(ctx context.Context, ref string) error {
	_, err := r.docker(ctx, "pull", ref)
	return err
}

// docker runs one docker command logged in to the registry, with the credentials in a throwaway docker
// config directory (never the invoking user's ~/.docker), and returns its output.
func (r *Registry) docker(ctx context.Context, args ...string) ([]byte, error) {
	cfg, err := os.MkdirTemp("", "skiff-testenv-docker-")
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	defer os.RemoveAll(cfg)
	if r.Username != "" {
		login := exec.CommandContext(ctx, "docker", "--config", cfg, "login", "--username", r.Username, "--password-stdin", r.Addr)
		login.Stdin = strings.NewReader(r.Password)
		if out, err := login.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("testenv: docker login %s: %w: %s", r.Addr, err, strings.TrimSpace(string(out)))
		}
	}
	out, err := exec.CommandContext(ctx, "docker", append([]string{"--config", cfg}, args...)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("testenv: docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// RemoveProject removes every container of a compose project (running or not) and its default network.
func RemoveProject(ctx context.Context, project string) error {
	out, err := exec.CommandContext(ctx, "docker", "ps", "--all", "--quiet", "--filter", "label=com.docker.compose.project="+project).Output()
	if err != nil {
		return fmt.Errorf("testenv: list containers of %s: %w", project, err)
	}
	var errs []error
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		if out, err := exec.CommandContext(ctx, "docker", append([]string{"rm", "--force", "--volumes"}, ids...)...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("testenv: remove containers of %s: %w: %s", project, err, out))
		}
	}
	out, err = exec.CommandContext(ctx, "docker", "network", "ls", "--quiet", "--filter", "label=com.docker.compose.project="+project).Output()
	if err == nil {
		for _, id := range strings.Fields(string(out)) {
			_ = exec.CommandContext(ctx, "docker", "network", "rm", id).Run()
		}
	}
	return errors.Join(errs...)
}

// RemoveImages removes every local image of the repositories that start with prefix (such as a test
// registry's "127.0.0.1:PORT/"), whatever their tags.
func RemoveImages(ctx context.Context, prefix string) error {
	out, err := exec.CommandContext(ctx, "docker", "image", "ls", "--all", "--no-trunc", "--format", "{{.Repository}} {{.ID}}").Output()
	if err != nil {
		return fmt.Errorf("testenv: list images: %w", err)
	}
	seen := map[string]bool{}
	var ids []string
	for _, line := range strings.Split(string(out), "\n") {
		repo, id, ok := strings.Cut(line, " ")
		if ok && strings.HasPrefix(repo, prefix) && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "docker", append([]string{"rmi", "--force"}, ids...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("testenv: remove images %s*: %w: %s", prefix, err, out)
	}
	return nil
}

// standardPath is the PATH that sshd gives sessions, and that HostWithout copies.
var standardPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// StartHostWithout starts an extra host (like StartHostWithTools) on which the programs named in hide cannot be
// found. It stands in for a target where, say, docker-compose is not installed.
func (e *Env) StartHostWithout(tb testing.TB, name string, hide ...string) *Host {
	tb.Helper()
	tools := make(map[string]string, len(hide))
	for _, h := range hide {
		tools[h] = ""
	}
	return e.StartHostWithTools(tb, name, tools)
}

// StartHostWithTools starts an extra host (like StartHost) whose sessions run with a PATH of one directory that
// links every program of the standard PATH, except those named in tools: each links to its value instead (say
// {"tar": "/bin/busybox"}, a target whose tar is BusyBox's), or is missing when the value is empty. Sessions go
// through an sshd ForceCommand, which serves the SFTP subsystem too.
func (e *Env) StartHostWithTools(tb testing.TB, name string, tools map[string]string) *Host {
	tb.Helper()
	suffix := make([]byte, 6)
	if _, err := rand.Read(suffix); err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(e.Dir, "tools-"+name+"-"+hex.EncodeToString(suffix))
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	for n, target := range tools {
		if target != "" {
			if err := os.Symlink(target, filepath.Join(dir, n)); err != nil {
				tb.Fatalf("testenv: %v", err)
			}
		}
	}
	for _, d := range standardPath {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, ent := range ents {
			n := ent.Name()
			if _, ok := tools[n]; ok {
				continue
			}
			if err := os.Symlink(filepath.Join(d, n), filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrExist) {
				tb.Fatalf("testenv: %v", err)
			}
		}
	}
	// A forced command takes the SFTP subsystem's requests too (SSH_ORIGINAL_COMMAND=internal-sftp).
	force := fmt.Sprintf(`ForceCommand PATH=%s; export PATH; case "$SSH_ORIGINAL_COMMAND" in internal-sftp) exec %s ;; esac; exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"`, dir, sftpServer)
	return e.StartHostWith(tb, HostOptions{Name: name, Config: []string{force}})
}

// sftpServer is OpenSSH's SFTP server program (package openssh-sftp-server, which openssh-server depends on),
// for a host whose forced command must serve the SFTP subsystem itself.
const sftpServer = "/usr/lib/openssh/sftp-server"
