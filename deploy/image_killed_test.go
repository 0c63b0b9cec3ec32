package deploy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// testKilledAfterLogin SIGKILLs a real skiff deploying an image app from a registry right after docker login
// stored the credentials on the target, then runs the next deploy: that run removes the credentials before
// anything else and says so, leaves no credential file behind, and the password appears in no output.
func testKilledAfterLogin(t *testing.T, fx *imageFixture) {
	a := fx.newImageApp(t, nil, "", composeOptions{})
	inv := fx.env.WriteInventory(t, fmt.Sprintf(`[registries.test]
server = %q
username = %q
password_env = "TEST_REGISTRY_PASSWORD"

[apps.shop]
hosts = [%q]
path = %q
compose_file = %q
service = "app"
image = %q
registry = "test"
check.ports = [%d]
check.http = %q
check.timeout = "4s"
`, fx.reg.Addr, fx.reg.Username, a.host.Name, a.app.Path, a.app.ComposeFile, fx.repo, a.port, a.app.Check.HTTP))
	config := filepath.Join(a.app.Path, ".skiff", "docker", "config.json")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TEST_REGISTRY_PASSWORD=" + fx.reg.Password}
	skiff := func(args ...string) *exec.Cmd {
		cmd := exec.Command(testenv.SkiffBinary(t), append([]string{"-i", inv}, args...)...)
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return cmd
	}
	auth := base64.StdEncoding.EncodeToString([]byte(fx.reg.Username + ":" + fx.reg.Password))

	killed := false
	for attempt := 1; attempt <= 3 && !killed; attempt++ {
		cmd := skiff("deploy", "shop", "--tag", "v1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.After(time.Minute)
	watch:
		for {
			select {
			case <-exited:
				break watch
			case <-deadline:
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
				t.Fatal("the deploy neither logged in nor ended within a minute")
			default:
			}
			if data, err := os.ReadFile(config); err == nil && bytes.Contains(data, []byte(auth)) {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
				break watch
			}
			time.Sleep(time.Millisecond)
		}
		if data, err := os.ReadFile(config); err == nil && bytes.Contains(data, []byte(auth)) {
			killed = true
		}
		if out, err := skiff("lock", "release", "--force", "shop").CombinedOutput(); err != nil {
			t.Fatalf("lock release: %v\n%s", err, out)
		}
	}
	if !killed {
		t.Skip("skiff could not be killed between docker login and logout in three attempts")
	}

	var stdout, stderr bytes.Buffer
	next := skiff("--json", "deploy", "shop", "--tag", "v1")
	next.Stdout, next.Stderr = &stdout, &stderr
	if err := next.Run(); err != nil {
		t.Fatalf("the next deploy: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	if want := "removed " + config + ", docker credentials left by an earlier run that was killed"; !strings.Contains(stdout.String(), want) {
		t.Errorf("the next deploy does not say %q:\n%s", want, stdout.String())
	}
	if _, err := os.Stat(config); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s is still on the target after the next run (%v)", config, err)
	}
	texts := map[string]string{"stdout": stdout.String(), "stderr": stderr.String(), "sshd log": a.host.Log()}
	wantNoSecrets(t, texts, a.app.Path, fx.reg.Password, auth)
}

// wantNoSecrets fails the test when one of secrets appears in texts (what a run printed or logged, by where)
// or in a file under dir on the target.
func wantNoSecrets(t *testing.T, texts map[string]string, dir string, secrets ...string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(p)
			texts[p] = string(data)
		}
		return nil
	})
	for where, text := range texts {
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("a secret appears in %s", where)
			}
		}
	}
}
